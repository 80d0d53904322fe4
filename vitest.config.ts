import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** The source of a workspace package: tests always run against src/, never against the last build. */
const src = (pkg: string, file = 'index.ts'): string =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${file}`, import.meta.url));

// Two projects: fast unit tests (pure logic, fakes) run in parallel; integration tests drive real
// dockerd / haproxy / etcd / ovs started by @glue/testkit, one file at a time so that engines and
// bridges of different files never meet. Tests that run the built bins (the CLI, glue-balancer) need
// `pnpm build` first, as `pnpm test` does.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@glue\/core\/contract$/, replacement: src('core', 'contract.ts') },
      { find: /^@glue\/core$/, replacement: src('core') },
      { find: /^@glue\/handler-exec$/, replacement: src('handler-exec') },
      { find: /^@glue\/handler-haproxy$/, replacement: src('handler-haproxy') },
      { find: /^@glue\/publisher-etcd\/routes$/, replacement: src('publisher-etcd', 'routes.ts') },
      { find: /^@glue\/publisher-etcd$/, replacement: src('publisher-etcd') },
      { find: /^@glue\/handler-ovs$/, replacement: src('handler-ovs') },
      { find: /^@glue\/handler-nftables$/, replacement: src('handler-nftables') },
      { find: /^@glue\/testkit$/, replacement: src('testkit') },
    ],
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['packages/*/test/**/*.int.test.ts', '**/node_modules/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['packages/*/test/**/*.int.test.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
