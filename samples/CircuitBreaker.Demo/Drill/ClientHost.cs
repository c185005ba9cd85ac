using System.Net;
using CircuitBreaker.Demo.Downstream;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace CircuitBreaker.Demo.Drill;

/// <summary>
/// The calling side, wired as an application wires it: one named client per service with the circuit breaker
/// from the <c>CircuitBreaker</c> section, OpenTelemetry metrics and traces, and the circuit-breakers health
/// check. It is a small web app on 127.0.0.1 so that it can serve <c>/metrics</c> and <c>/health</c>.
/// </summary>
public static class ClientHost
{
    /// <summary>Builds the app; it is started by the caller.</summary>
    /// <param name="options">The command line.</param>
    /// <param name="configuration">appsettings.json, environment variables and command-line overrides.</param>
    /// <param name="services">The downstream services, already listening.</param>
    /// <param name="admissions">Where the clients record the calls their breakers let through.</param>
    /// <param name="logs">The only logging provider: warnings and errors go to the drill's output.</param>
    public static WebApplication Build(
        DemoOptions options,
        IConfiguration configuration,
        IReadOnlyList<FlakyService> services,
        AdmissionLog admissions,
        ILoggerProvider logs)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "CircuitBreaker.Demo",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.ClearProviders().AddProvider(logs);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, options.Prometheus ? options.PrometheusPort : 0));

        foreach (var service in services)
        {
            builder.Services.AddHttpClient(service.Name, c => c.BaseAddress = service.BaseAddress)
                .AddCircuitBreaker() // the "CircuitBreaker" section, overlaid by "CircuitBreaker:Clients:{name}"
                .AddHttpMessageHandler(sp => new AdmissionRecorder(admissions, service.Name, sp.GetRequiredService<TimeProvider>()));
        }

        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("circuitbreaker-demo"))
            .WithMetrics(metrics =>
            {
                metrics.AddCircuitBreakerInstrumentation();
                if (options.Prometheus)
                {
                    metrics.AddPrometheusExporter();
                }

                if (options.Otlp is { } endpoint)
                {
                    metrics.AddOtlpExporter((exporter, reader) =>
                    {
                        UseEndpoint(exporter, endpoint, "v1/metrics");
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 5000; // live during a 30 s drill
                    });
                }
            })
            .WithTracing(tracing =>
            {
                tracing.AddCircuitBreakerInstrumentation().AddSource(Traffic.ActivitySourceName);
                if (options.Otlp is { } endpoint)
                {
                    tracing.AddOtlpExporter(o => UseEndpoint(o, endpoint, "v1/traces"));
                }
            });
        builder.Services.AddHealthChecks().AddCircuitBreakers();

        var app = builder.Build();
        if (options.Prometheus)
        {
            app.MapPrometheusScrapingEndpoint(); // GET /metrics
        }

        app.MapHealthChecks("/health");
        return app;
    }

    /// <summary>
    /// OTLP over gRPC, or over HTTP (protobuf) when the endpoint is on port 4318, the collectors' HTTP port; over HTTP
    /// each signal has its own path.
    /// </summary>
    private static void UseEndpoint(OtlpExporterOptions options, Uri endpoint, string signalPath)
    {
        if (endpoint.Port == 4318)
        {
            options.Protocol = OtlpExportProtocol.HttpProtobuf;
            options.Endpoint = new Uri(endpoint, signalPath);
        }
        else
        {
            options.Protocol = OtlpExportProtocol.Grpc;
            options.Endpoint = endpoint;
        }
    }
}
