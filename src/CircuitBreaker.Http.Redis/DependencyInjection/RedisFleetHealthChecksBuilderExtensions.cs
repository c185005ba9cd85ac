using CircuitBreaker.Http.Redis;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds fleet mode's connection to Redis to <c>AddHealthChecks()</c>.</summary>
public static class RedisFleetHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check that is Healthy while circuits are coordinated through Redis and
    /// <paramref name="failureStatus"/> while Redis cannot be reached (circuits then decide locally; requests are unaffected).
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="name">The name of the check.</param>
    /// <param name="failureStatus">The status while Redis cannot be reached; <see cref="HealthStatus.Degraded"/> by default.</param>
    /// <param name="tags">Tags of the check, for filtering endpoints.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHealthChecksBuilder AddCircuitBreakerFleet(
        this IHealthChecksBuilder builder,
        string name = "circuit-breaker-fleet",
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => new RedisFleetHealthCheck(sp.GetService<RedisFleetCoordinator>()),
            failureStatus ?? HealthStatus.Degraded,
            tags));
    }
}
