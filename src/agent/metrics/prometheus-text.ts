/**
 * Prometheus' text exposition format (version 0.0.4), written by hand so the agent does not load
 * a metrics library: per metric family a `# HELP` and a `# TYPE` line, then one line per sample
 * with its labels. Label values escape `\`, `"` and newlines; help text escapes `\` and newlines.
 */

/** The content type of the format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label names and values of one sample. */
export type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Builds one exposition: add families, then `text()`. */
export class PrometheusText {
  private readonly lines: string[] = [];
  private readonly names = new Set<string>();

  /** Adds a metric family; throws on an invalid or repeated name (a programming error). */
  family(name: string, type: 'gauge' | 'counter' | 'untyped', help: string, samples: Iterable<readonly [Labels | undefined, number]>): this {
    if (!METRIC_NAME.test(name) || this.names.has(name)) throw new Error(`invalid or repeated metric name ${name}`);
    this.names.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const pairs = labels ? Object.entries(labels) : [];
      for (const [label] of pairs) if (!LABEL_NAME.test(label)) throw new Error(`invalid label name ${label} on ${name}`);
      const rendered = pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
      this.lines.push(`${name}${rendered} ${formatValue(value)}`);
    }
    return this;
  }

  /** A family with one unlabelled sample. */
  single(name: string, type: 'gauge' | 'counter', help: string, value: number): this {
    return this.family(name, type, help, [[undefined, value]]);
  }

  /** The exposition text, ending with a newline. */
  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
