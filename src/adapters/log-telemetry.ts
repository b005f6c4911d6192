import type { ImageRequestEvent, RequestTelemetry } from '../domain/metering';

/** The first word of every request event line; the saved queries in infra/ look for it. */
const IMAGE_REQUEST_EVENT = 'ImageRequest';

/**
 * One line per request in the Functions log: `ImageRequest {json}`. The host sends the log to
 * Application Insights (as traces, with its own Entra ID credential), where `parse_json` turns the
 * line into the dimensions and measurements the saved queries chart. No library, so nothing to load
 * on a cold start; locally the line goes to the console.
 */
export class LogTelemetry implements RequestTelemetry {
  constructor(private readonly write: (line: string) => void) {}

  trackImageRequest(event: ImageRequestEvent): void {
    const { tokens, ...rest } = event;
    this.write(
      `${IMAGE_REQUEST_EVENT} ${JSON.stringify({
        ...rest,
        textInputTokens: tokens.textInput,
        imageInputTokens: tokens.imageInput,
        imageOutputTokens: tokens.imageOutput,
        textOutputTokens: tokens.textOutput,
      })}`,
    );
  }
}
