using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http.Redis;

/// <summary>
/// Fleet mode's instruments, on the core's meter (<see cref="CircuitBreakerTelemetry.MeterName"/>), so that
/// <c>AddCircuitBreakerInstrumentation()</c> exports them with the rest. A listener that throws is telemetry failing,
/// not Redis: caught here, it neither undoes the decision it counts nor reads as an outage to the coordinator.
/// </summary>
internal sealed class FleetMetrics
{
    private readonly Counter<long> _decisions;
    private readonly ILogger _logger;
    private int _faultLogged;

    public FleetMetrics(IMeterFactory meterFactory, Func<bool> connected, ILogger logger)
    {
        _logger = logger;
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

    public void Record(string decision, string clientName)
    {
        try
        {
            _decisions.Add(1, new KeyValuePair<string, object?>("circuit.fleet.decision", decision), new KeyValuePair<string, object?>("http.client.name", clientName));
        }
#pragma warning disable CA1031 // See the class: whatever a listener throws.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            // Once: a broken listener throws at every decision.
            if (Interlocked.Exchange(ref _faultLogged, 1) == 0)
            {
                Log.TelemetryFailed(_logger, ex);
            }
        }
    }
}
