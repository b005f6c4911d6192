import { Agent, request } from 'undici';

import type { UpstreamSettings } from '../protocol';
import type { BenchTarget } from './target';

/**
 * The floor: one POST to the upstream with undici, body read and thrown away. Everything the other two
 * implementations add on top of this (decoding, storing, signing) is their "added latency".
 */
export function createRawTarget(upstream: UpstreamSettings): BenchTarget {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, headersTimeout: 300_000, bodyTimeout: 300_000 });
  const url = generationsUrl(upstream);
  return {
    async generate(n) {
      const response = await request(url, {
        method: 'POST',
        dispatcher,
        signal: AbortSignal.timeout(300_000),
        headers: { 'api-key': upstream.apiKey, 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: upstream.prompt, n, size: upstream.size }),
      });
      let responseBytes = 0;
      for await (const chunk of response.body) responseBytes += (chunk as Buffer).length;
      if (response.statusCode !== 200) return { ok: false, code: `HTTP ${response.statusCode}` };
      return { ok: true, decodedBytes: 0, responseBytes, images: [] };
    },
  };
}

export function generationsUrl(upstream: UpstreamSettings): string {
  const deployment = encodeURIComponent(upstream.deployment);
  return `${upstream.emulatorUrl}/openai/deployments/${deployment}/images/generations?api-version=${encodeURIComponent(upstream.apiVersion)}`;
}
