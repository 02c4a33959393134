/**
 * The one place that picks the cluster bus: a server on the NATS store talks to the other
 * replicas over the same NATS servers, with the store's options (servers, credentials, TLS,
 * prefix) on a connection of its own; any other server is alone (`LocalBus`).
 */
import type { Logger } from '../../lib/logger.ts';
import { connectNats, type NatsStoreOptions } from '../../store/nats/connection.ts';
import { LocalBus, type ClusterBus } from './bus.ts';
import { NatsBus } from './nats-bus.ts';

/** What choosing a bus needs: the NATS store's options, absent for a single server. */
export interface ClusterChoice {
  nats?: NatsStoreOptions;
}

/** Creates (but does not start) the bus for this server process. */
export async function createClusterBus(choice: ClusterChoice, logger: Logger): Promise<ClusterBus> {
  if (!choice.nats) return new LocalBus();
  const nc = await connectNats({ ...choice.nats, name: 'strata-server cluster bus' });
  return new NatsBus(nc, { log: logger.child({ component: 'cluster' }), ...(choice.nats.prefix ? { prefix: choice.nats.prefix } : {}) });
}
