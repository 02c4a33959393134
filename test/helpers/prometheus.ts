/** Parses Prometheus text with a real parser (parse-prometheus-text-format) and finds samples in it. */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** One metric family as the parser returns it. */
export type PrometheusFamily = ReturnType<typeof parsePrometheusTextFormat>[number];

/** Parses an exposition; the parser throws on malformed text. */
export function parsePrometheus(text: string): Map<string, PrometheusFamily> {
  return new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
}

/** The value of the family's sample whose labels include `labels`, as a number (undefined when absent). */
export function sampleValue(families: Map<string, PrometheusFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const sample = families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? undefined : Number(sample.value);
}
