using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CircuitBreaker.Http;

/// <summary>
/// Reports the circuits of the registry as the operational playbook reads them: Healthy while every circuit
/// is closed; Degraded while any is open, half-open or isolated; Unhealthy when one has stayed out of Closed
/// for longer than twice its break duration while its probes kept failing, or its half-open probes failed
/// <see cref="FailedProbesLimit"/> times in a row. A circuit whose break elapsed and that nobody has called
/// since is waiting for a probe, not failing, so time alone never makes it Unhealthy. An observe-only circuit is
/// at most Degraded: it turns no call away, so it must not fail a readiness probe and take the instance out of
/// rotation, which would change traffic in the very mode that promises not to.
/// </summary>
internal sealed class CircuitBreakerHealthCheck : IHealthCheck
{
    public const int FailedProbesLimit = 3;

    private readonly CircuitBreakerRegistry? _registry;

    /// <param name="registry">The registry; <see langword="null"/> when no breaker was added, which is healthy.</param>
    public CircuitBreakerHealthCheck(CircuitBreakerRegistry? registry) => _registry = registry;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (_registry is null)
        {
            return Task.FromResult(HealthCheckResult.Healthy("No circuit breaker is registered (AddCircuitBreaker was not called)."));
        }

        var data = new Dictionary<string, object>(StringComparer.Ordinal);
        var total = 0;
        var unhealthy = 0;
        var failingObserved = 0;
        foreach (var circuit in _registry.Entries)
        {
            total++;
            var snapshot = circuit.Machine.GetSnapshot();
            if (snapshot.State == CircuitState.Closed)
            {
                continue;
            }

            var outFor = snapshot.OutOfClosedFor ?? TimeSpan.Zero;
            var failing = IsFailing(snapshot, outFor, circuit.Machine.Settings.BreakDuration);
            var observed = !circuit.Enforce && snapshot.State != CircuitState.Isolated; // an isolated circuit turns calls away all the same
            unhealthy += failing && !observed ? 1 : 0;
            failingObserved += failing && observed ? 1 : 0;
            data[circuit.Key.ToString()] = string.Create(
                CultureInfo.InvariantCulture,
                $"{CircuitBreakerTelemetry.Name(snapshot.State)} for {outFor.TotalSeconds:0} s, {snapshot.FailedProbes} failed probes{(failing ? ", failing" : "")}{(observed ? ", observe-only" : "")}");
        }

        var description = failingObserved == 0
            ? $"{data.Count} of {total} circuits are not closed; {unhealthy} failing."
            : $"{data.Count} of {total} circuits are not closed; {unhealthy + failingObserved} failing, {failingObserved} of them observe-only.";
        var result = unhealthy > 0 ? new HealthCheckResult(context.Registration.FailureStatus, description, data: data)
            : data.Count > 0 ? HealthCheckResult.Degraded(description, data: data)
            : HealthCheckResult.Healthy($"All {total} circuits are closed.");
        return Task.FromResult(result);
    }

    // An isolated circuit sends no probes: it is an operator's decision, reported as Degraded, never as failing.
    private static bool IsFailing(CircuitSnapshot snapshot, TimeSpan outFor, TimeSpan breakDuration) =>
        snapshot.State != CircuitState.Isolated
        && (snapshot.FailedProbes >= FailedProbesLimit
            || (snapshot.State == CircuitState.Open && snapshot.FailedProbes > 0 && outFor > 2 * breakDuration));
}
