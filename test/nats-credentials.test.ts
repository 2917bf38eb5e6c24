/**
 * NATS credentials (issue 10): the embedded server's users per role, checked against a real
 * nats-server — what each role may publish and subscribe to is exactly the table in
 * core/nats/roles.ts (a property over random subjects), a process with ingestion's
 * credentials can neither swap a plugin nor kill an actor, anonymous connections are refused,
 * an existing server is joined with a users file, and `tls://` connects over TLS.
 */
import t from 'tap';
import fc from 'fast-check';
import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { Bus } from '../core/nats/bus.js';
import { EmbeddedNatsServer } from '../core/nats/server.js';
import { ensureRoleUsers, identityFor, loadCredentialsFile, type NatsCredentials } from '../core/nats/credentials.js';
import { NATS_ROLES, rolePermissions, serverAuthorization, type NatsRole } from '../core/nats/roles.js';
import { SUBJECTS, killSubject, handoverSubject, exitSubject, queueLogSubject, journalSubject } from '../core/subjects.js';
import { CraftError } from '../core/errors.js';
import { tempDir, eventually } from './helpers/nats.js';
import { startPlatform } from './helpers/platform.js';
import { StorageClient } from '../core/storage/client.js';

/** NATS subject matching: `*` one token, `>` one or more at the end. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}
const mayPublish = (role: NatsRole, subject: string): boolean => rolePermissions(role).publish.some((p) => matches(p, subject));
const maySubscribe = (role: NatsRole, subject: string): boolean => rolePermissions(role).subscribe.some((p) => matches(p, subject));

/** Every subject the platform uses, and some it must not let through. */
const SUBJECT_POOL: string[] = [
  ...Object.values(SUBJECTS),
  ...['control', 'queue', 'storage', 'query', 'notifier', 'alerting', 'ingestion'].flatMap((a) => [killSubject(a), handoverSubject(a)]),
  exitSubject('main'),
  queueLogSubject(1, 0),
  queueLogSubject(7, 3),
  journalSubject('control'),
  '$JS.API.STREAM.CREATE.X',
  '$JS.API.STREAM.DELETE.CRAFT_QUEUE_E1',
  '$KV.craft-snapshots.alerting',
  '_INBOX.storage.abc.1',
  '_INBOX.ingestion.abc.2',
  'craft.alerting.events.firing',
  'craft.other.thing',
  'unrelated',
];

async function rolesServer(t: Test): Promise<{ url: string; credentials: NatsCredentials & { kind: 'roles' } }> {
  const dir = tempDir(t, 'craft-nats-roles-');
  const credentials = ensureRoleUsers(join(dir, 'users.json')) as NatsCredentials & { kind: 'roles' };
  const server = new EmbeddedNatsServer({ dataDir: dir, configText: serverAuthorization(credentials.users) });
  await server.start();
  t.teardown(() => server.stop());
  return { url: server.url, credentials };
}

async function connectAs(t: Test, url: string, credentials: NatsCredentials, role: NatsRole): Promise<Bus> {
  const bus = await Bus.connect(url, `test-${role}`, identityFor(credentials, role));
  t.teardown(() => bus.close());
  return bus;
}

/** Whether `to` gets a message `from` publishes on `subject` (flushes make the answer exact, no timing). */
async function delivered(from: NatsConnection, to: NatsConnection, subject: string): Promise<boolean> {
  let got = false;
  // A refused subscription calls back with the permission error, not a message.
  const sub = to.subscribe(subject, { callback: (error) => {
    if (error === null) got = true;
  } });
  await to.flush();
  from.publish(subject, new Uint8Array([1]));
  await from.flush();
  await to.flush();
  sub.unsubscribe();
  return got;
}

t.test('users file: a user and a random password per role, mode 0600, reused on the next start', async (t) => {
  const file = join(tempDir(t), 'nats', 'users.json');
  const first = ensureRoleUsers(file);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.equal(first.kind, 'roles');
  if (first.kind !== 'roles') return;
  t.same(Object.keys(first.users).sort(), [...NATS_ROLES].sort());
  t.equal(new Set(Object.values(first.users).map((u) => u.password)).size, NATS_ROLES.length, 'passwords differ');
  t.same(ensureRoleUsers(file), first, 'read back, not regenerated');
  // A file an older version wrote (no notifier role): the embedded server's users gain it, the others are kept.
  const older = { roles: Object.fromEntries(Object.entries(first.users).filter(([role]) => role !== 'notifier')) };
  writeFileSync(file, JSON.stringify(older));
  const upgraded = ensureRoleUsers(file);
  t.equal(upgraded.kind, 'roles');
  if (upgraded.kind === 'roles') {
    t.same({ ...upgraded.users, notifier: undefined }, { ...first.users, notifier: undefined }, 'every earlier user kept');
    t.equal(upgraded.users.notifier.user, 'craft-notifier', 'the new role added');
    t.same(ensureRoleUsers(file), upgraded, 'and written');
  }
  writeFileSync(file, '{"roles": null}');
  t.throws(() => ensureRoleUsers(file), /NATS users file/, 'a broken file is a clear error, not a crash');
  writeFileSync(file, '{"roles": {"admin": {"user": "a", "password": "b"}}}');
  t.throws(() => loadCredentialsFile(file), /roles\.runtime/, 'a users file missing a role names it');
  writeFileSync(file, 'nonsense');
  t.throws(() => loadCredentialsFile(file), /neither a NATS \.creds file/);
  t.throws(() => loadCredentialsFile(join(tempDir(t), 'absent.json')), CraftError);
});

t.test('a real nats-server enforces exactly the role table: publish and subscribe, every role, random subjects', async (t) => {
  const { url, credentials } = await rolesServer(t);
  const admin = await connectAs(t, url, credentials, 'admin');
  const conns = new Map<NatsRole, Bus>();
  for (const role of NATS_ROLES) conns.set(role, await connectAs(t, url, credentials, role));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...NATS_ROLES), fc.constantFrom(...SUBJECT_POOL), async (role, subject) => {
      const conn = conns.get(role)!.nc;
      const published = await delivered(conn, admin.nc, subject);
      if (published !== mayPublish(role, subject)) throw new Error(`${role} publish ${subject}: server ${published}, table ${mayPublish(role, subject)}`);
      const received = await delivered(admin.nc, conn, subject);
      if (received !== maySubscribe(role, subject)) throw new Error(`${role} subscribe ${subject}: server ${received}, table ${maySubscribe(role, subject)}`);
    }),
    { numRuns: 150 },
  );
  // The cases the issue names, whatever the random run drew.
  for (const subject of [SUBJECTS.controlSwap, killSubject('storage'), exitSubject('main'), '$JS.API.STREAM.DELETE.CRAFT_QUEUE_E1']) {
    t.notOk(await delivered(conns.get('ingestion')!.nc, admin.nc, subject), `ingestion cannot publish ${subject}`);
  }
  t.ok(await delivered(conns.get('ingestion')!.nc, admin.nc, SUBJECTS.queueAppend), 'ingestion can append to the queue');
  t.ok(await delivered(conns.get('ingestion')!.nc, admin.nc, queueLogSubject(1, 2)), 'and publish into its JetStream log');
  t.notOk(await delivered(admin.nc, conns.get('query')!.nc, '_INBOX.storage.x.y'), 'a role cannot read another role\'s replies');
});

t.test('no anonymous connections, no wrong passwords', async (t) => {
  const { url, credentials } = await rolesServer(t);
  await t.rejects(connect({ servers: url, reconnect: false }), /authoriz/i, 'anonymous refused');
  await t.rejects(connect({ servers: url, reconnect: false, user: credentials.users.admin.user, pass: 'wrong' }), /authoriz/i, 'wrong password refused');
});

t.test('a platform: the intruder with ingestion credentials cannot swap or kill; the operator can', async (t) => {
  const platform = await startPlatform(t);
  t.equal(platform.natsCredentials.kind, 'roles', 'the embedded server has users per role by default');
  await t.rejects(connect({ servers: platform.natsUrl, reconnect: false }), /authoriz/i, 'anonymous refused');
  const intruder = await Bus.connect(platform.natsUrl, 'intruder', platform.natsIdentity('ingestion'));
  t.teardown(() => intruder.close());
  const choicesBefore = await platform.bus.request<Record<string, { id: string }>>(SUBJECTS.controlChoices, {});
  await t.rejects(intruder.request(SUBJECTS.controlSwap, { slot: 'storage.engine', plugin: 'storage.lsm' }, { timeoutMs: 1_000 }), CraftError, 'the swap request goes nowhere');
  intruder.publish(killSubject('storage'), {});
  await intruder.nc.flush();
  const storageRestarts = (): number | undefined => platform.processStatus().tree.children?.find((c) => c.id === 'storage')?.restarts;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(storageRestarts(), 0, 'the kill never reached the storage actor');
  t.same(await platform.bus.request(SUBJECTS.controlChoices, {}), choicesBefore, 'plugin choices unchanged');
  // The operator's connection can do both.
  platform.bus.publish(killSubject('storage'), {});
  t.ok(await eventually(() => storageRestarts() === 1), 'the admin role kills the storage actor');
  t.ok(await eventually(async () => (await new StorageClient(platform.bus).info().then(() => true, () => false))), 'and it serves again');
});

t.test('joining an existing server with a users file: a second process runs storage as its role', async (t) => {
  const { url, credentials } = await rolesServer(t);
  const front = await startPlatform(t, { actors: ['control', 'queue', 'ingestion', 'query'], nats: { url, credentials: credentials.file }, plugins: { 'ingestion.server': 'craft0.http' } });
  t.equal(front.natsCredentials.kind, 'roles');
  const back = await startPlatform(t, { actors: ['storage'], nats: front.natsToJoin(), processName: 'back' });
  const response = await fetch(`http://127.0.0.1:${front.ingestionPort}/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timestamp: new Date().toISOString(), metrics: [{ name: 'joined', value: 1, tags: { host: 'a' } }] }) });
  t.equal(response.status, 200, await response.text());
  const storage = new StorageClient(back.bus);
  t.ok(await eventually(async () => (await storage.info()).stats.samples === 1, 15_000), 'the sample went ingestion → queue → storage across processes, each as its role');
});

t.test('craft nats-config writes a users file and prints a server block that nats-server accepts and enforces', async (t) => {
  const dir = tempDir(t, 'craft-nats-config-');
  const usersFile = join(dir, 'users.json');
  const cli = new URL('../../bin/craft.js', import.meta.url).pathname;
  const printed = spawnSync(process.execPath, [cli, 'nats-config', '--users', usersFile], { encoding: 'utf8' });
  t.equal(printed.status, 0, printed.stderr);
  t.match(printed.stdout, /authorization \{/);
  t.equal(statSync(usersFile).mode & 0o777, 0o600, 'users file written, owner only');
  const again = spawnSync(process.execPath, [cli, 'nats-config', '--users', usersFile], { encoding: 'utf8' });
  t.equal(again.stdout, printed.stdout, 'the same file gives the same block');
  const server = new EmbeddedNatsServer({ dataDir: join(dir, 'nats'), configText: printed.stdout });
  await server.start();
  t.teardown(() => server.stop());
  const credentials = loadCredentialsFile(usersFile);
  const ingestion = await connectAs(t, server.url, credentials, 'ingestion');
  const admin = await connectAs(t, server.url, credentials, 'admin');
  t.ok(await delivered(ingestion.nc, admin.nc, SUBJECTS.queueAppend), 'ingestion appends');
  t.notOk(await delivered(ingestion.nc, admin.nc, SUBJECTS.controlSwap), 'ingestion cannot swap');
});

t.test('a NATS .creds file (operator mode, JWTs): the whole process connects as that user', async (t) => {
  const dir = tempDir(t, 'craft-nats-creds-');
  const operator = createOperator();
  const account = createAccount();
  const user = createUser();
  const system = createAccount();
  const operatorJwt = await encodeOperator('craft-test', operator, { system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount('SYS', system, {}, { signer: operator });
  // No limits on the account (-1), JetStream included (the journals and the queue need it).
  const accountJwt = await encodeAccount('craft', account, { limits: { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, leaf: -1, wildcards: true, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } }, { signer: operator });
  const userJwt = await encodeUser('craft-process', user, account);
  const credsFile = join(dir, 'craft.creds');
  writeFileSync(credsFile, fmtCreds(userJwt, user), { mode: 0o600 });
  const server = new EmbeddedNatsServer({
    dataDir: join(dir, 'nats'),
    configText: `operator: ${operatorJwt}\nsystem_account: ${system.getPublicKey()}\nresolver: MEMORY\nresolver_preload: {\n  ${account.getPublicKey()}: ${accountJwt}\n  ${system.getPublicKey()}: ${systemJwt}\n}\n`,
  });
  await server.start();
  t.teardown(() => server.stop());
  await t.rejects(connect({ servers: server.url, reconnect: false }), /authoriz/i, 'anonymous refused');
  t.equal(loadCredentialsFile(credsFile).kind, 'creds', 'recognised as a .creds file');
  const platform = await startPlatform(t, { actors: ['control', 'queue', 'storage'], nats: { url: server.url, credentials: credsFile } });
  t.equal(platform.natsCredentials.kind, 'creds');
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(() => storage.info().then(() => true, () => false), 15_000), 'the platform runs as the .creds user, JetStream journals included');
});

const openssl = spawnSync('openssl', ['version']).status === 0;
t.test('tls:// connects over TLS with the CA given, and refuses a server it cannot verify', { skip: openssl ? false : 'openssl is not installed (apt-get install -y openssl)' }, async (t) => {
  const dir = tempDir(t, 'craft-nats-tls-');
  const run = (args: string[]): void => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=craft test CA']);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext']);
  t.ok(existsSync(join(dir, 'server.pem')));
  const users = ensureRoleUsers(join(dir, 'users.json')) as NatsCredentials & { kind: 'roles' };
  const server = new EmbeddedNatsServer({
    dataDir: join(dir, 'nats'),
    configText: `tls {\n  cert_file: ${JSON.stringify(join(dir, 'server.pem'))}\n  key_file: ${JSON.stringify(join(dir, 'server.key'))}\n}\n${serverAuthorization(users.users)}`,
  });
  await server.start();
  t.teardown(() => server.stop());
  const tlsUrl = `tls://127.0.0.1:${server.port}`;
  const platform = await startPlatform(t, { actors: ['control', 'queue', 'storage'], nats: { url: tlsUrl, credentials: users.file, tls: { ca: join(dir, 'ca.pem') } } });
  const storage = new StorageClient(platform.bus);
  t.ok(await eventually(() => storage.info().then(() => true, () => false), 15_000), 'the platform runs over TLS');
  t.equal(platform.bus.nc.info?.tls_required, true, 'to a server that requires TLS');
  await t.rejects(Bus.connect(tlsUrl, 'no-ca', { ...identityFor(users, 'admin'), tls: {} }).then((b) => b.close()), /certificate|self.signed|verify/i, 'without the CA the server is not trusted');
});
