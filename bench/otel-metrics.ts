/**
 * The alternative to our telemetry line, for the cold-import scenario only: what the app would load
 * and build at start-up to send its per-request measurements as OpenTelemetry metrics through the
 * Azure Monitor exporter (the lightest library route that still installs on Node 20; the
 * @azure/monitor-opentelemetry distro and applicationinsights 3 now need Node 22). Nothing is sent.
 */
import { AzureMonitorMetricExporter } from '@azure/monitor-opentelemetry-exporter';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';

const exporter = new AzureMonitorMetricExporter({
  connectionString: 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/',
});
const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })] });
metrics.setGlobalMeterProvider(provider);
const meter = provider.getMeter('imagegen');
meter.createCounter('imagegen.images');
meter.createHistogram('imagegen.upstream.latency', { unit: 'ms' });
