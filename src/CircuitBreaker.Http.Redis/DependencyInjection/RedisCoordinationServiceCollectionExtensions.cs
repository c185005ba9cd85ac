using CircuitBreaker.Http.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Shares every client's circuits with the other instances of the app through Redis (fleet mode).</summary>
public static class RedisCoordinationServiceCollectionExtensions
{
    /// <summary>
    /// Shares the circuits of every client with the fleet through Redis, configured from <c>CircuitBreaker:Fleet</c>
    /// (<c>ConnectionString</c> at least). Call it after <c>AddCircuitBreaker()</c>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The same service collection, for chaining.</returns>
    public static IServiceCollection AddRedisCoordination(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        RedisCoordinationRegistration.Add(services, clientName: null, configure: null);
        return services;
    }

    /// <summary>
    /// Shares the circuits of every client with the fleet through Redis, configured from <c>CircuitBreaker:Fleet</c> and
    /// then by <paramref name="configure"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the fleet's options.</param>
    /// <returns>The same service collection, for chaining.</returns>
    public static IServiceCollection AddRedisCoordination(this IServiceCollection services, Action<RedisCoordinationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        RedisCoordinationRegistration.Add(services, clientName: null, configure);
        return services;
    }
}
