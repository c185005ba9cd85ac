using CircuitBreaker.Http.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Shares one named client's circuits with the other instances of the app through Redis (fleet mode).</summary>
public static class RedisCoordinationHttpClientBuilderExtensions
{
    /// <summary>
    /// Shares this client's circuits with the fleet through Redis, configured from <c>CircuitBreaker:Fleet</c>
    /// (<c>ConnectionString</c> at least). Call it after <c>AddCircuitBreaker()</c>. A circuit opens for every instance
    /// only when <see cref="RedisCoordinationOptions.Quorum"/> instances have it open; one instance then probes for all.
    /// Nothing is sent to Redis per request, and while Redis is unreachable every circuit decides locally.
    /// </summary>
    /// <param name="builder">The client builder.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHttpClientBuilder AddRedisCoordination(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        RedisCoordinationRegistration.Add(builder.Services, builder.Name, configure: null);
        return builder;
    }

    /// <summary>
    /// Shares this client's circuits with the fleet through Redis, configured from <c>CircuitBreaker:Fleet</c> and then
    /// by <paramref name="configure"/>. The options are the app's: every coordinated client shares one connection.
    /// </summary>
    /// <param name="builder">The client builder.</param>
    /// <param name="configure">Sets the fleet's options.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHttpClientBuilder AddRedisCoordination(this IHttpClientBuilder builder, Action<RedisCoordinationOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        RedisCoordinationRegistration.Add(builder.Services, builder.Name, configure);
        return builder;
    }
}
