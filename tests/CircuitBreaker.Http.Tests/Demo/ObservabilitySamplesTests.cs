using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Text.RegularExpressions;
using CircuitBreaker.Http.Redis;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Demo;

/// <summary>
/// The queries of <c>samples/observability/</c> (alert rules and Grafana dashboard) against what the breaker
/// emits, as OpenTelemetry's Prometheus exporter names it: a query on a series that never exists is a panel that
/// stays empty or an alert that never fires.
/// </summary>
public sealed partial class ObservabilitySamplesTests
{
    [Fact]
    public void EveryMetricTheSamplesQuery_IsOneTheBreakerEmits()
    {
        var emitted = PrometheusNames();
        var files = new[] { "alerts.yml", "grafana-dashboard.json" };

        foreach (var file in files)
        {
            var queried = MetricName().Matches(File.ReadAllText(SamplePath(file))).Select(m => m.Value).Except(Labels).ToHashSet(StringComparer.Ordinal);
            Assert.NotEmpty(queried);
            Assert.All(queried, name => Assert.True(emitted.Contains(name), $"{file} queries {name}, which is not one of: {string.Join(", ", emitted.Order(StringComparer.Ordinal))}"));
        }
    }

    [Fact]
    public void Dashboard_RejectionPanel_DoesNotShowObserveOnlyCallsAsRejected()
    {
        // In observe-only mode circuit_rejected_total counts calls that were sent all the same, tagged
        // circuit_enforced="false" and fallback="none": in a panel of calls turned away, they would show as calls
        // whose callers got an exception.
        using var dashboard = JsonDocument.Parse(File.ReadAllText(SamplePath("grafana-dashboard.json")));
        var queries = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.TryGetProperty("targets", out var targets) ? targets.EnumerateArray() : Enumerable.Empty<JsonElement>())
            .Select(t => t.GetProperty("expr").GetString()!)
            .Where(e => e.Contains("circuit_rejected_total", StringComparison.Ordinal))
            .ToList();

        Assert.NotEmpty(queries);
        Assert.All(queries, q => Assert.Matches("circuit_enforced(!=|=)\"false\"", q));
    }

    /// <summary>The names of every instrument of the breaker's meter (fleet mode's included), as the Prometheus exporter writes them.</summary>
    private static HashSet<string> PrometheusNames()
    {
        using var harness = new BreakerHarness();
        var factory = harness.Services.GetRequiredService<IMeterFactory>();
        var instruments = new List<Instrument>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == CircuitBreakerTelemetry.MeterName && ReferenceEquals(instrument.Meter.Scope, factory))
                {
                    instruments.Add(instrument);
                }
            },
        };
        listener.Start();
        _ = harness.Registry; // creates the core's instruments
        _ = new FleetMetrics(factory, () => true, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        return instruments.Select(PrometheusName).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// OpenTelemetry's Prometheus naming: dots become underscores, a unit in braces (an annotation) adds nothing,
    /// seconds add <c>_seconds</c>, and a counter ends in <c>_total</c>.
    /// </summary>
    private static string PrometheusName(Instrument instrument)
    {
        var name = instrument.Name.Replace('.', '_');
        name += instrument.Unit switch
        {
            "s" => "_seconds",
            null or "" => "",
            var unit when unit.StartsWith('{') => "",
            var unit => throw new InvalidOperationException($"no Prometheus suffix known for the unit {unit} of {instrument.Name}"),
        };
        return instrument.GetType().IsGenericType && instrument.GetType().GetGenericTypeDefinition() == typeof(Counter<>) ? name + "_total" : name;
    }

    private static string SamplePath(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CircuitBreaker.Http.sln")))
            {
                return Path.Combine(dir.FullName, "samples", "observability", file);
            }
        }

        throw new InvalidOperationException("The repository root (CircuitBreaker.Http.sln) was not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The labels of the breaker's tags that begin as its metric names do.</summary>
    private static readonly string[] Labels = ["circuit_previous_state", "circuit_enforced", "circuit_fleet_decision"];

    // A name that begins with circuit_, but for the recording rules' names (circuit:circuit_open_total:increase10m).
    [GeneratedRegex(@"(?<![\w:])circuit_\w+")]
    private static partial Regex MetricName();
}
