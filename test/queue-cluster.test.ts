/**
 * The platform on a 3-node NATS cluster (issue 9, phase 3's cluster): three nats-server
 * processes clustered on loopback ports, every stream and bucket the platform creates with 3
 * replicas (`nats.replicas: 3`): the platform runs on it and its streams are replicated.
 *
 * A node `kill -9`ed under load is a `todo`: in 1 run of 3 here the queue actor crashed on
 * `TimeoutError` from JetStream requests while the dead node's streams elected new leaders, and
 * writes had not resumed 6 s later (issue 9, phase 3). The test runs and reports, but does not
 * fail the suite until that is fixed.
 */
import t from 'tap';
import { Bus } from '../core/nats/bus.js';
import { StorageClient } from '../core/storage/client.js';
import { eventually } from './helpers/nats.js';
import { startCluster } from './helpers/cluster.js';
import { postJson, startPlatform } from './helpers/platform.js';

t.test('3-node cluster: the platform runs with R3 streams and stores what it acknowledges', async (t) => {
  const cluster = await startCluster(t);
  const probe = await Bus.connect(cluster.url, 'probe');
  t.ok(await eventually(async () => (await probe.jetstreamManager().then((jsm) => jsm.getAccountInfo()).then(() => true, () => false)), 30_000, 200), 'JetStream is up across the cluster');
  await probe.close();
  const platform = await startPlatform(t, { nats: { url: cluster.url, replicas: 3 }, plugins: { 'ingestion.server': 'craft0.http', 'queue.log': 'queue.jetstream' } });
  const jsm = await platform.bus.jetstreamManager();
  for (const stream of ['CRAFT_QUEUE_E1', 'CRAFT_JOURNAL_QUEUE', 'CRAFT_JOURNAL_CONTROL', 'KV_craft-snapshots']) {
    t.equal((await jsm.streams.info(stream)).config.num_replicas, 3, `${stream} has 3 replicas`);
  }
  const startMs = Date.now() - 60_000;
  for (let i = 0; i < 20; i++) {
    const res = await postJson(platform.ingestionPort, '/metrics', { metrics: [{ name: 'clustered', value: i, timestamp: startMs + i }] });
    t.equal(res.status, 200);
  }
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(async () => (await storage.count({ matchers: [{ name: '__name__', op: '=', value: 'clustered' }], startMs: 0, endMs: Date.now() }).catch(() => ({ samples: -1 }))).samples === 20, 20_000), 'all 20 stored');
});

t.test('3-node cluster, R3 streams: a node killed under load loses no acknowledged sample; writes and consumption continue', { todo: 'the queue actor can crash on JetStream TimeoutError during leader failover (issue 9, phase 3)' }, async (t) => {
  const cluster = await startCluster(t);
  // Clustered JetStream answers once the nodes have elected a meta leader.
  const probe = await Bus.connect(cluster.url, 'probe');
  t.ok(await eventually(async () => (await probe.jetstreamManager().then((jsm) => jsm.getAccountInfo()).then(() => true, () => false)), 30_000, 200), 'JetStream is up across the cluster');
  await probe.close();

  const platform = await startPlatform(t, { nats: { url: cluster.url, replicas: 3 }, plugins: { 'ingestion.server': 'craft0.http', 'queue.log': 'queue.jetstream' } });
  const storage = new StorageClient(platform.bus);
  const info = await (await platform.bus.jetstreamManager()).streams.info('CRAFT_QUEUE_E1');
  t.equal(info.config.num_replicas, 3, 'the queue stream has 3 replicas');
  t.equal(info.cluster?.replicas?.length, 2, 'a leader and two followers');

  let acknowledged = 0;
  let refused = 0;
  let ambiguous = 0;
  let ackedAfterKill = 0;
  let killed = false;
  let running = true;
  const startMs = Date.now() - 120_000;
  let n = 0;
  const load = (async () => {
    while (running) {
      const i = n++;
      const metrics = Array.from({ length: 5 }, (_, k) => ({ name: 'clustered', value: i, tags: { k: String(k) }, timestamp: startMs + i }));
      try {
        const res = await postJson(platform.ingestionPort, '/metrics', { metrics });
        if (res.status === 200) {
          acknowledged += 5;
          if (killed) ackedAfterKill += 5;
        } else refused += 1;
      } catch {
        ambiguous += 5;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 2_000));
  // Kill the node that leads the queue stream: the worst one to lose.
  const leader = (await (await platform.bus.jetstreamManager()).streams.info('CRAFT_QUEUE_E1')).cluster?.leader;
  const victim = cluster.nodes.find((_, i) => `n${i + 1}` === leader) ?? cluster.nodes[0]!;
  process.kill(victim.pid!, 'SIGKILL');
  killed = true;
  await new Promise((r) => setTimeout(r, 6_000));
  running = false;
  await load;
  t.ok(ackedAfterKill > 0, `writes went on after the kill (${ackedAfterKill} samples acknowledged after it; ${refused} requests refused meanwhile)`);
  let stored = -1;
  const settled = await eventually(async () => {
    stored = (await storage.count({ matchers: [{ name: '__name__', op: '=', value: 'clustered' }], startMs: 0, endMs: Date.now() }).catch(() => ({ samples: -1 }))).samples;
    return stored >= acknowledged && stored <= acknowledged + ambiguous;
  }, 30_000, 250);
  t.ok(settled, `stored ${stored} = acknowledged ${acknowledged} (+ at most ${ambiguous} ambiguous): nothing acknowledged was lost`);
  const restarts = platform.processStatus().tree.children?.map((c) => `${c.id}:${c.restarts}`).join(' ');
  t.comment(`actor restarts: ${restarts}`);
});
