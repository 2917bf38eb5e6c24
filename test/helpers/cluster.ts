/**
 * Test helper: a 3-node NATS cluster with JetStream on loopback ports, each node a real
 * nats-server in its own temporary directory (clustered JetStream needs a server name per node
 * and one cluster name), stopped by pid when the test ends.
 */
import { join } from 'node:path';
import type { Test } from 'tap';
import { EmbeddedNatsServer } from '../../core/nats/server.js';
import { freePort } from '../../actors/platform.js';
import { Bus } from '../../core/nats/bus.js';
import { eventually, tempDir } from './nats.js';

export interface NatsCluster {
  nodes: EmbeddedNatsServer[];
  /** Every node's client URL, comma-separated (what `nats.url` takes). */
  url: string;
}

export async function startCluster(t: Test, size = 3): Promise<NatsCluster> {
  const dir = tempDir(t, 'craft-nats-cluster-');
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    routePorts.push(await freePort());
  }
  const nodes = clientPorts.map((port, i) => {
    const routes = routePorts.filter((_, j) => j !== i).map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ');
    return new EmbeddedNatsServer({
      dataDir: join(dir, `n${i + 1}`),
      port,
      configText: `server_name: "n${i + 1}"\ncluster {\n  name: "craft"\n  listen: "127.0.0.1:${routePorts[i]}"\n  routes: [${routes}]\n}\n`,
    });
  });
  t.teardown(async () => {
    for (const node of nodes) await node.stop();
  });
  await Promise.all(nodes.map((n) => n.start()));
  return { nodes, url: clientPorts.map((p) => `nats://127.0.0.1:${p}`).join(',') };
}

/** Whether clustered JetStream can place a stream with a replica on every node (the meta leader elected, every server joined) within 30 s. */
export async function jetStreamReady(cluster: NatsCluster): Promise<boolean> {
  const probe = await Bus.connect(cluster.url, 'probe');
  try {
    // Ready means a stream with a replica on every node can be placed (not only that the API answers).
    const placed = async (): Promise<boolean> => {
      const jsm = await probe.jetstreamManager();
      await jsm.streams.add({ name: 'READY_PROBE', subjects: ['ready.probe'], num_replicas: cluster.nodes.length });
      await jsm.streams.delete('READY_PROBE');
      return true;
    };
    return await eventually(() => placed().catch(() => false), 30_000, 200);
  } finally {
    await probe.close();
  }
}
