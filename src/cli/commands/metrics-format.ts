/** How `strata top` and `strata agents show --metrics` print metrics values: short, fixed units. */
import { formatBytes } from '../../protocol/size.ts';
import type { MetricsSummary } from '../../protocol/metrics.ts';

/** `42.0%`. */
export function percentText(value: number): string {
  return `${value.toFixed(1)}%`;
}

/** `37% of 7.8 GiB`, or `-` when the total is 0. */
export function usedText(part: { used: number; total: number } | undefined): string {
  if (!part || part.total <= 0) return '-';
  return `${Math.round((part.used / part.total) * 100)}% of ${formatBytes(part.total)}`;
}

/** A fraction used, for sorting (0 when unknown). */
export function usedFraction(part: { used: number; total: number } | undefined): number {
  return part && part.total > 0 ? part.used / part.total : 0;
}

/** `1.5 MiB/s`. */
export function rateText(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** `3d4h`, `5h12m`, `42m`. */
export function uptimeText(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  if (days > 0) return `${days}d${hours}h`;
  if (hours > 0) return `${hours}h${minutes}m`;
  return `${minutes}m`;
}

/** `0.52 0.31 0.20`. */
export function loadText(load: MetricsSummary['load']): string {
  return load.map((l) => l.toFixed(2)).join(' ');
}

/** `web running (2 restarts) 1.2% 48 MiB`, one per service, comma-separated; `-` without services. */
export function servicesText(services: MetricsSummary['services']): string {
  if (services.length === 0) return '-';
  return services.map((s) => {
    const restarts = s.restarts > 0 ? ` (${s.restarts} restart${s.restarts === 1 ? '' : 's'})` : '';
    const usage = [s.cpu === undefined ? '' : percentText(s.cpu), s.rss === undefined ? '' : formatBytes(s.rss)].filter(Boolean).join(' ');
    return `${s.name} ${s.state}${restarts}${usage ? ` ${usage}` : ''}`;
  }).join(', ');
}
