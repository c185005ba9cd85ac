using System.Diagnostics.Metrics;

namespace CircuitBreaker.Http.Redis;

/// <summary>
/// Fleet mode's instruments, on the core's meter (<see cref="CircuitBreakerTelemetry.MeterName"/>), so that
/// <c>AddCircuitBreakerInstrumentation()</c> exports them with the rest.
/// </summary>
internal sealed class FleetMetrics
{
    private readonly Counter<long> _decisions;

    public FleetMetrics(IMeterFactory meterFactory, Func<bool> connected)
    {
        var meter = meterFactory.Create(CircuitBreakerTelemetry.MeterName);
        meter.CreateObservableGauge(
            "circuit.fleet.connected",
            () => connected() ? 1 : 0,
            "{connection}",
            "1 while this instance coordinates its circuits through Redis; 0 while they decide locally because Redis cannot be reached.");
        _decisions = meter.CreateCounter<long>(
            "circuit.fleet.decisions",
            "{decision}",
            "Fleet decisions applied by this instance, by circuit.fleet.decision: open (a quorum or a failed fleet probe), probe (this instance won the probe lease), close (the fleet's probe succeeded).");
    }

    public void Record(string decision, string clientName) =>
        _decisions.Add(1, new KeyValuePair<string, object?>("circuit.fleet.decision", decision), new KeyValuePair<string, object?>("http.client.name", clientName));
}
