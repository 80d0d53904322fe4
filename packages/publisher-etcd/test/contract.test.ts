import { handlerContractSuite } from '@glue/core/contract';
import { Publisher } from '../src/publisher.js';

// No etcd here: port 1 on loopback refuses connections, so this also proves that a Publisher whose
// etcd is down constructs, starts, handles every event promptly and stops.
handlerContractSuite({
  name: 'Publisher (etcd unreachable)',
  handlerClass: Publisher,
  params: { endpoints: '127.0.0.1:1', ttl: '5', 'host-id': 'contract-host' },
});
