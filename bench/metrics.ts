/** Reading a component's Prometheus /metrics from a benchmark. */

/** A Prometheus text exposition, as `name{labels}` → value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}
/** The sum of the series of metric `name` whose labels include every pair in `labels`. */
export const sumOf = (series: Map<string, number>, name: string, labels: Record<string, string> = {}): number => {
  let sum = 0;
  for (const [key, value] of series) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    const own = brace < 0 ? '' : key.slice(brace);
    if (Object.entries(labels).every(([k, v]) => own.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
};
