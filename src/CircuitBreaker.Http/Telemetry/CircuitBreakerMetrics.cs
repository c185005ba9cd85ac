using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace CircuitBreaker.Http;

/// <summary>
/// The instruments of the <see cref="CircuitBreakerTelemetry.MeterName"/> meter. Tags are built only when an
/// instrument is enabled, so an app that nobody listens to pays a field read per event and nothing more. A listener
/// that throws is reported to <see cref="TelemetryFaults"/>, never to the call being measured.
/// </summary>
internal sealed class CircuitBreakerMetrics
{
    // Boxed once: a tag's value is an object, and in observe-only mode an open circuit records one for every call it lets through.
    private static readonly object NotEnforced = false;

    private readonly Counter<long> _opened;
    private readonly Counter<long> _halfOpened;
    private readonly Counter<long> _closed;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _rejected;
    private readonly TelemetryFaults _faults;

    public CircuitBreakerMetrics(IMeterFactory meterFactory, CircuitBreakerRegistry registry)
    {
        _faults = registry.TelemetryFaults;
        var meter = meterFactory.Create(CircuitBreakerTelemetry.MeterName);
        _opened = meter.CreateCounter<long>("circuit.open", "{transition}", "Transitions of a circuit to Open, from closed or from half-open (a failed probe).");
        _halfOpened = meter.CreateCounter<long>("circuit.half_open", "{transition}", "Transitions of a circuit to HalfOpen.");
        _closed = meter.CreateCounter<long>("circuit.close", "{transition}", "Transitions of a circuit to Closed.");
        _failures = meter.CreateCounter<long>("circuit.failures", "{call}", "Calls counted as failures of the downstream host, by error.type.");
        _rejected = meter.CreateCounter<long>("circuit.rejected", "{call}", "Calls not sent because the circuit was open or a limit shed them, by reason and by the fallback that answered them.");
        meter.CreateObservableGauge("circuit.state", () => Observe<int>(registry, static s => (int)s.State), "{state}", "State of each circuit: 0 closed, 1 open, 2 half-open, 3 isolated.");
        meter.CreateObservableGauge(
            "circuit.open.duration",
            () => Observe<double>(registry, static s => s.OutOfClosedFor?.TotalSeconds),
            "s",
            "How long each circuit that is not closed has been out of Closed.");
    }

    public void RecordTransition(CircuitEntry circuit, CircuitTransition transition)
    {
        var counter = transition.State switch
        {
            CircuitState.Open => _opened,
            CircuitState.HalfOpen => _halfOpened,
            CircuitState.Closed => _closed,
            _ => null,
        };
        if (counter is not { Enabled: true })
        {
            return;
        }

        var tags = circuit.Tags();
        if (transition.State == CircuitState.Open)
        {
            tags.Add("circuit.previous_state", CircuitBreakerTelemetry.Name(transition.PreviousState));
        }

        Add(counter, tags);
    }

    public void RecordFailure(CircuitEntry circuit, string errorType)
    {
        if (_failures.Enabled)
        {
            var tags = circuit.Tags();
            tags.Add("error.type", errorType);
            Add(_failures, tags);
        }
    }

    public void RecordRejected(CircuitEntry circuit, string fallback, string reason, bool enforced)
    {
        if (_rejected.Enabled)
        {
            var tags = circuit.Tags();
            tags.Add("fallback", fallback);
            tags.Add("reason", reason);
            if (!enforced)
            {
                tags.Add("circuit.enforced", NotEnforced); // observe-only: the call was sent all the same
            }

            Add(_rejected, tags);
        }
    }

    private void Add(Counter<long> counter, in TagList tags)
    {
        try
        {
            counter.Add(1, tags);
        }
#pragma warning disable CA1031 // A listener's fault must fail neither the call measured nor the circuit's move.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _faults.Metrics(ex);
        }
    }

    private static IEnumerable<Measurement<T>> Observe<T>(CircuitBreakerRegistry registry, Func<CircuitSnapshot, T?> value)
        where T : struct
    {
        foreach (var circuit in registry.Entries)
        {
            if (value(circuit.Machine.GetSnapshot()) is { } measured)
            {
                yield return new Measurement<T>(measured, circuit.Tags());
            }
        }
    }
}
