import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls like Power Automate's HTTP action: GET the absolute Location without any of the first
 * request's headers, wait Retry-After seconds (20 when absent), stop at the first answer that is not 202.
 */
export async function pollLikePowerAutomate(first: Response, maxPolls = 60): Promise<{ final: Response; polls: number }> {
  let response = first;
  let polls = 0;
  while (response.status === 202) {
    const location = response.headers.get('location');
    if (location === null) throw new Error('202 without Location');
    if (!URL.canParse(location)) throw new Error(`Location is not an absolute URL: ${location}`);
    await response.body?.cancel();
    await sleep(Number(response.headers.get('retry-after') ?? '20') * 1000);
    response = await fetch(location);
    polls++;
    if (polls > maxPolls) throw new Error('the job never ended');
  }
  return { final: response, polls };
}
