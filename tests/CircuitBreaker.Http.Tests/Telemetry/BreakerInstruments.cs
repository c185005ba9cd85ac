using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// A <see cref="MetricCollector{T}"/> for every instrument of the circuit breaker's meter, scoped to the
/// <see cref="IMeterFactory"/> of one service provider, so that tests running in parallel never see each
/// other's measurements.
/// </summary>
internal sealed class BreakerInstruments : IDisposable
{
    public BreakerInstruments(IServiceProvider services)
    {
        var factory = services.GetRequiredService<IMeterFactory>();
        Open = new MetricCollector<long>(factory, CircuitBreakerTelemetry.MeterName, "circuit.open");
        HalfOpen = new MetricCollector<long>(factory, CircuitBreakerTelemetry.MeterName, "circuit.half_open");
        Close = new MetricCollector<long>(factory, CircuitBreakerTelemetry.MeterName, "circuit.close");
        Failures = new MetricCollector<long>(factory, CircuitBreakerTelemetry.MeterName, "circuit.failures");
        Rejected = new MetricCollector<long>(factory, CircuitBreakerTelemetry.MeterName, "circuit.rejected");
        State = new MetricCollector<int>(factory, CircuitBreakerTelemetry.MeterName, "circuit.state");
        OpenDuration = new MetricCollector<double>(factory, CircuitBreakerTelemetry.MeterName, "circuit.open.duration");
    }

    public MetricCollector<long> Open { get; }

    public MetricCollector<long> HalfOpen { get; }

    public MetricCollector<long> Close { get; }

    public MetricCollector<long> Failures { get; }

    public MetricCollector<long> Rejected { get; }

    public MetricCollector<int> State { get; }

    public MetricCollector<double> OpenDuration { get; }

    public IEnumerable<MetricCollector<long>> Counters => [Open, HalfOpen, Close, Failures, Rejected];

    /// <summary>The tags every instrument carries for one circuit of the client <paramref name="client"/>.</summary>
    public static Dictionary<string, object?> CircuitTags(string host, int port, string client = "users") => new(StringComparer.Ordinal)
    {
        ["http.client.name"] = client,
        ["server.address"] = host,
        ["server.port"] = port,
    };

    /// <summary>The circuit tags plus <paramref name="extra"/>.</summary>
    public static Dictionary<string, object?> CircuitTags(string host, int port, params (string Key, object? Value)[] extra)
    {
        var tags = CircuitTags(host, port);
        foreach (var (key, value) in extra)
        {
            tags[key] = value;
        }

        return tags;
    }

    /// <summary>
    /// Observes the gauges once and returns their values by <c>server.address</c>; a circuit absent from the
    /// result reported nothing.
    /// </summary>
    public static Dictionary<string, T> Observe<T>(MetricCollector<T> gauge)
        where T : struct
    {
        gauge.Clear();
        gauge.RecordObservableInstruments();
        return gauge.GetMeasurementSnapshot().ToDictionary(m => (string)m.Tags["server.address"]!, m => m.Value, StringComparer.Ordinal);
    }

    public void Dispose()
    {
        foreach (var counter in Counters)
        {
            counter.Dispose();
        }

        State.Dispose();
        OpenDuration.Dispose();
    }
}

internal static class MeasurementAssertions
{
    /// <summary>Asserts that a measurement carries exactly <paramref name="expected"/>, no tag more or less.</summary>
    public static void HasExactTags<T>(this CollectedMeasurement<T> measurement, IReadOnlyDictionary<string, object?> expected)
        where T : struct
    {
        var actual = measurement.Tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={Format(t.Value)}");
        var wanted = expected.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={Format(t.Value)}");
        Assert.Equal(wanted, actual);
    }

    private static string Format(object? value) => value switch
    {
        null => "null",
        string s => $"\"{s}\"",
        _ => $"{value} ({value.GetType().Name})",
    };
}
