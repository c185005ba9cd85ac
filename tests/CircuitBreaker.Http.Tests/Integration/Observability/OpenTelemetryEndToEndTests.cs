using System.Diagnostics;
using System.Net;
using System.Text;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace CircuitBreaker.Http.Tests.Integration.Observability;

/// <summary>
/// An application as it would be wired: a host configured from JSON, a named client on a real Kestrel
/// downstream, and the OpenTelemetry SDK collecting the breaker through <c>AddCircuitBreakerInstrumentation()</c>
/// into in-memory exporters. The OpenTelemetry SDK listens to every meter and source of the breaker's name in
/// the process, so these tests run without parallel tests (see <see cref="ProcessWideTelemetryGroup"/>), and
/// everything read here is still filtered by this test's client name and the server's port.
/// </summary>
[Collection(ProcessWideTelemetryGroup.Name)]
public sealed class OpenTelemetryEndToEndTests
{
    private const string ClientName = "otel-e2e-users";

    private const string Config = """
        {
          "CircuitBreaker": {
            "FailureThreshold": 3,
            "BreakDuration": "00:00:30"
          }
        }
        """;

    [Fact]
    public async Task OpenTelemetrySdk_ExportsThePlaybooksMetricsAndTheBreakersSpans_FromARealDownstream()
    {
        await using var server = await KestrelDownstream.StartAsync();
        var metrics = new LockedCollection<MetricSnapshot>();
        var activities = new LockedCollection<Activity>();
        var time = new FakeTimeProvider();
        using var host = BuildHost(server, time, metrics, activities);
        await host.StartAsync();
        var meterProvider = host.Services.GetRequiredService<MeterProvider>();
        using var client = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient(ClientName);

        // Closed -> Open: three 500s, then a call turned away.
        server.RespondWith(500, "boom");
        for (var i = 0; i < 3; i++)
        {
            using var failed = await client.GetAsync(new Uri("users/1", UriKind.Relative));
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("users/1", UriKind.Relative)));
        Assert.Equal(3, server.RequestCount);
        time.Advance(TimeSpan.FromSeconds(10));

        var whileOpen = Flush(meterProvider, metrics);
        Assert.Equal(1L, GaugeLong(whileOpen, "circuit.state", server));
        Assert.Equal(10.0, GaugeDouble(whileOpen, "circuit.open.duration", server));
        Assert.All(whileOpen.Where(m => m.Name == "circuit.open.duration"), m => Assert.Equal("s", m.Unit));
        Assert.Equal(1L, Sum(whileOpen, "circuit.open", server, ("circuit.previous_state", "closed")));
        Assert.Equal(3L, Sum(whileOpen, "circuit.failures", server, ("error.type", "500")));

        // Open -> HalfOpen -> Open (a failed probe) -> HalfOpen -> Closed.
        time.Advance(TimeSpan.FromSeconds(20));
        using (var failedProbe = await client.GetAsync(new Uri("users/1", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failedProbe.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(30));
        server.RespondWith(200, "back");
        Assert.Equal("back", await client.GetStringAsync(new Uri("users/1", UriKind.Relative)));
        Assert.Equal(5, server.RequestCount);

        var afterRecovery = Flush(meterProvider, metrics);

        // circuit_open_total, circuit_half_open_total, circuit_close_total, circuit_failures_total, circuit_rejected_total
        Assert.Equal(1L, Sum(afterRecovery, "circuit.open", server, ("circuit.previous_state", "closed")));
        Assert.Equal(1L, Sum(afterRecovery, "circuit.open", server, ("circuit.previous_state", "half_open")));
        Assert.Equal(2L, Sum(afterRecovery, "circuit.half_open", server));
        Assert.Equal(1L, Sum(afterRecovery, "circuit.close", server));
        Assert.Equal(4L, Sum(afterRecovery, "circuit.failures", server, ("error.type", "500")));
        Assert.Equal(1L, Sum(afterRecovery, "circuit.rejected", server, ("fallback", "none"), ("reason", "circuit_open")));
        Assert.Equal(0L, GaugeLong(afterRecovery, "circuit.state", server));

        // A closed circuit reports no open duration, and the SDK exports no stale point for it (an alert on
        // circuit_open_duration_seconds stops firing once the circuit closes).
        Assert.DoesNotContain(
            afterRecovery.Where(m => m.Name == "circuit.open.duration").SelectMany(m => m.MetricPoints),
            p => Equals(Tags(p).GetValueOrDefault("server.port"), server.Port));
        foreach (var name in new[] { "circuit.open", "circuit.half_open", "circuit.close", "circuit.failures", "circuit.rejected" })
        {
            var streams = afterRecovery.Where(m => m.Name == name).ToList();
            Assert.NotEmpty(streams);
            Assert.All(streams, m => Assert.Equal(MetricType.LongSum, m.MetricType));
            Assert.All(streams, m => Assert.Equal(CircuitBreakerTelemetry.MeterName, m.MeterName));
        }

        Assert.All(afterRecovery.Where(m => m.Name == "circuit.state"), m => Assert.Equal(MetricType.LongGauge, m.MetricType));

        // Spans: the rejected call, and the two probes.
        var spans = activities.Snapshot()
            .Where(a => Equals(a.GetTagItem("http.client.name"), ClientName) && Equals(a.GetTagItem("server.port"), server.Port))
            .ToList();
        Assert.Equal(["circuit_breaker.rejected", "circuit_breaker.probe", "circuit_breaker.probe"], spans.Select(a => a.OperationName));
        Assert.All(spans, a => Assert.Equal("127.0.0.1", a.GetTagItem("server.address")));
        Assert.Equal("none", spans[0].GetTagItem("circuit.fallback"));
        Assert.Equal(ActivityStatusCode.Error, spans[0].Status);
        Assert.Equal("failure", spans[1].GetTagItem("circuit.probe.result"));
        Assert.Equal("500", spans[1].GetTagItem("error.type"));
        Assert.Equal("success", spans[2].GetTagItem("circuit.probe.result"));

        await host.StopAsync();
    }

    [Fact]
    public async Task OpenTelemetrySdk_ConnectionRefused_IsExportedWithTheExceptionTypeAsErrorType()
    {
        var server = await KestrelDownstream.StartAsync();
        await server.DisposeAsync(); // from now on the port refuses connections
        var metrics = new LockedCollection<MetricSnapshot>();
        var activities = new LockedCollection<Activity>();
        using var host = BuildHost(server, new FakeTimeProvider(), metrics, activities);
        await host.StartAsync();
        using var client = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient(ClientName);

        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri("users/1", UriKind.Relative)));

        var exported = Flush(host.Services.GetRequiredService<MeterProvider>(), metrics);
        Assert.Equal(1L, Sum(exported, "circuit.failures", server, ("error.type", "System.Net.Http.HttpRequestException")));
        Assert.Equal(0L, GaugeLong(exported, "circuit.state", server));
        await host.StopAsync();
    }

    private static IHost BuildHost(KestrelDownstream server, FakeTimeProvider time, LockedCollection<MetricSnapshot> metrics, LockedCollection<Activity> activities)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, EnvironmentName = "Test" });
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(Config)));
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddHttpClient(ClientName, c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
        builder.Services.AddOpenTelemetry()
            .WithMetrics(m => m.AddCircuitBreakerInstrumentation().AddInMemoryExporter(metrics))
            .WithTracing(t => t.AddCircuitBreakerInstrumentation().AddInMemoryExporter(activities));
        return builder.Build();
    }

    /// <summary>Collects and exports now, and returns what this collection exported.</summary>
    private static List<MetricSnapshot> Flush(MeterProvider provider, LockedCollection<MetricSnapshot> metrics)
    {
        metrics.Clear();
        Assert.True(provider.ForceFlush(10_000));
        return metrics.Snapshot();
    }

    private static long Sum(List<MetricSnapshot> exported, string name, KestrelDownstream server, params (string Key, object Value)[] extra) =>
        Single(exported, name, server, extra).GetSumLong();

    private static long GaugeLong(List<MetricSnapshot> exported, string name, KestrelDownstream server) =>
        Single(exported, name, server, []).GetGaugeLastValueLong();

    private static double GaugeDouble(List<MetricSnapshot> exported, string name, KestrelDownstream server) =>
        Single(exported, name, server, []).GetGaugeLastValueDouble();

    /// <summary>The one point of <paramref name="name"/>, in any of its streams, for this test's circuit with exactly the circuit tags and <paramref name="extra"/>.</summary>
    private static MetricPoint Single(List<MetricSnapshot> exported, string name, KestrelDownstream server, (string Key, object Value)[] extra)
    {
        var expected = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["http.client.name"] = ClientName,
            ["server.address"] = "127.0.0.1",
            ["server.port"] = server.Port,
        };
        foreach (var (key, value) in extra)
        {
            expected[key] = value;
        }

        // Every service provider of the process has a meter of this name, and the SDK exports one stream per
        // meter: the point of this test's circuit is in one of them.
        var points = exported.Where(m => m.Name == name).SelectMany(m => m.MetricPoints).Where(p => Tags(p).Count == expected.Count && expected.All(e => Tags(p).TryGetValue(e.Key, out var v) && Equals(v, e.Value))).ToList();
        return Assert.Single(points);
    }

    private static Dictionary<string, object?> Tags(MetricPoint point)
    {
        var tags = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var tag in point.Tags)
        {
            tags[tag.Key] = tag.Value;
        }

        return tags;
    }
}
