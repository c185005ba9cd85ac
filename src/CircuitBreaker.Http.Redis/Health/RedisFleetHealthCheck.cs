using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CircuitBreaker.Http.Redis;

/// <summary>Healthy while the fleet is coordinated through Redis; otherwise the registration's failure status (Degraded by default).</summary>
internal sealed class RedisFleetHealthCheck : IHealthCheck
{
    private readonly RedisFleetCoordinator? _coordinator;

    public RedisFleetHealthCheck(RedisFleetCoordinator? coordinator) => _coordinator = coordinator;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_coordinator is null)
        {
            return Task.FromResult(HealthCheckResult.Healthy("Fleet mode is off (AddRedisCoordination was not called)."));
        }

        var data = new Dictionary<string, object>(StringComparer.Ordinal) { ["instance"] = _coordinator.InstanceName };
        return Task.FromResult(_coordinator.IsAvailable
            ? HealthCheckResult.Healthy("Circuits are coordinated with the fleet through Redis.", data)
            : new HealthCheckResult(context.Registration.FailureStatus, "Redis cannot be reached: every circuit decides locally (requests are unaffected).", data: data));
    }
}
