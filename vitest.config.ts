import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests (pure logic, fakes) run in parallel; integration tests drive real
// dockerd / haproxy / etcd / ovs started by @glue/testkit, one file at a time so that engines and
// bridges of different files never meet.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts'],
          exclude: ['packages/*/test/**/*.int.test.ts', '**/node_modules/**'],
        },
      },
      {
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
