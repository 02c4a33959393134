/**
 * The one place that picks the cluster bus: a server on a shared NATS store talks to the other
 * replicas over the same NATS servers (a connection of its own, with the store's options); any
 * other server is alone (`LocalBus`).
 */
import type { Logger } from '../../lib/logger.ts';
import { LocalBus, type ClusterBus } from './bus.ts';
import { NatsBus } from './nats-bus.ts';
import { connectNats, type NatsConnectionConfig } from './nats-connect.ts';

/** What choosing a bus needs from the server's configuration. */
export interface ClusterChoice {
  /** NATS to reach the other replicas through; absent for a single server. */
  nats?: NatsConnectionConfig & { prefix?: string };
}

/** Creates (but does not start) the bus for this server process. */
export async function createClusterBus(choice: ClusterChoice, logger: Logger): Promise<ClusterBus> {
  if (!choice.nats) return new LocalBus();
  const bus = new NatsBus(await connectNats({ ...choice.nats, name: 'strata-server cluster bus' }), {
    log: logger.child({ component: 'cluster' }),
    ...(choice.nats.prefix ? { prefix: choice.nats.prefix } : {}),
  });
  return bus;
}
