using CircuitBreaker.Http;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Lets a fleet coordination package (such as CircuitBreaker.Http.Redis) steer this instance's circuits.</summary>
public static class CircuitBreakerFleetServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="ICircuitFleetControl"/> over the circuit-breaker registry, and lets the
    /// <c>CircuitBreaker:Fleet</c> configuration section through to the package that reads it (without a
    /// coordination package that key is rejected as unknown). Coordination packages call this; apps need not.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The same service collection, for chaining.</returns>
    public static IServiceCollection AddCircuitBreakerFleetControl(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        CircuitBreakerServiceRegistration.AddFleetControl(services);
        return services;
    }
}
