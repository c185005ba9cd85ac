using CircuitBreaker.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the circuit breakers' health to <c>AddHealthChecks()</c>.</summary>
public static class CircuitBreakerHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check over every circuit: Healthy while all are closed, Degraded while any is open,
    /// half-open or isolated, and <paramref name="failureStatus"/> when one keeps failing its probes (out of
    /// Closed for more than twice its break duration with failed probes, or three failed probes in a row). An
    /// observe-only circuit (<see cref="CircuitBreakerOptions.Enforce"/> off) is at most Degraded, since it turns no
    /// call away. The result's data lists the circuits that are not closed.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The name of the check.</param>
    /// <param name="failureStatus">The status reported for failing circuits; <see cref="HealthStatus.Unhealthy"/> by default.</param>
    /// <param name="tags">Tags of the check, for filtering endpoints.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHealthChecksBuilder AddCircuitBreakers(
        this IHealthChecksBuilder builder,
        string name = "circuit-breakers",
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => new CircuitBreakerHealthCheck(sp.GetService<CircuitBreakerRegistry>()),
            failureStatus ?? HealthStatus.Unhealthy,
            tags));
    }
}
