/**
 * Where the sampler learns which supervised services run and as which pids: the agent itself
 * (`Agent.services()`, from each configuration's supervisor), or `NO_SERVICES`.
 */

/** One supervised service, as the sampler needs it. */
export interface ServiceStat {
  /** The configuration the service belongs to (its name in summaries). */
  configuration: string;
  /** The main process, while one runs. */
  pid?: number;
  state: string;
  restarts: number;
}

/** Lists the supervised services; called once per sample, so it must be cheap and never throw. */
export interface ServiceStatsSource {
  services(): readonly ServiceStat[];
}

/** A source with no services. */
export const NO_SERVICES: ServiceStatsSource = { services: () => [] };
