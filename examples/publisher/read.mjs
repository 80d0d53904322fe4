#!/usr/bin/env node
// Reads what the publisher wrote: every container, the backends of one HTTP host, then follows changes.
// Usage: node examples/publisher/read.mjs [ENDPOINTS] [VHOST]   (after `pnpm build`)
//   ENDPOINTS default 127.0.0.1:2379; VHOST default shop.example.com. Ctrl-C to stop.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../..', import.meta.url));
// In your own project: import { Reader } from '@glue/publisher-etcd';
const { Reader } = await import(join(root, 'packages/publisher-etcd/dist/index.js'));

const [endpoints = '127.0.0.1:2379', vhost = 'shop.example.com'] = process.argv.slice(2);
const reader = new Reader({ endpoints, prefix: '/glue' });

for (const owner of await reader.hosts())
  console.log(
    `host ${owner.host}: engine ${owner.engineName}, Glue pid ${owner.pid} on ${owner.hostname}, TTL ${owner.ttl} s`,
  );
for (const c of await reader.containers()) {
  const ips = Object.entries(c.networks ?? {})
    .map(([net, n]) => `${net}=${n.ip}`)
    .join(' ');
  console.log(`  ${c.host} ${c.name} ${c.image} ${c.state?.status} health=${c.health ?? '-'} ${ips}`);
}
const backends = await reader.serving(vhost);
console.log(
  `${vhost}: ${backends.map((b) => `${Object.values(b.addresses)[0]}:${b.port} (${b.name} on ${b.host}, weight ${b.weight})`).join(', ') || 'no backend'}`,
);

const watch = await reader.watch({
  onChange: (change) => {
    if (change.type === 'put')
      console.log(`put    ${change.record.host} ${change.record.name} ${change.record.state?.status}`);
    else console.log(`delete ${change.host} ${change.id.slice(0, 12)}`);
    console.log(`       now ${watch.containers().length} containers`);
  },
});
console.log('watching; Ctrl-C to stop');
process.on(
  'SIGINT',
  () =>
    void watch
      .close()
      .then(() => reader.close())
      .then(() => process.exit(0)),
);
