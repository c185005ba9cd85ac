using CircuitBreaker.Http;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Adds the circuit breaker to every <see cref="HttpClient"/> that <c>IHttpClientFactory</c> builds. Each
/// named client still gets circuits of its own: a failing host seen by one client never opens another's.
/// </summary>
public static class CircuitBreakerServiceCollectionExtensions
{
    /// <summary>
    /// Adds a circuit breaker to every client, configured from the app's configuration section
    /// <c>CircuitBreaker</c>, overlaid per client by <c>CircuitBreaker:Clients:{clientName}</c>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The same service collection, for chaining.</returns>
    public static IServiceCollection AddCircuitBreaker(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        CircuitBreakerServiceRegistration.AddFromAppConfiguration(services, clientName: null);
        return services;
    }

    /// <summary>Adds a circuit breaker to every client, configured in code.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options of every client's circuits.</param>
    /// <returns>The same service collection, for chaining.</returns>
    public static IServiceCollection AddCircuitBreaker(this IServiceCollection services, Action<CircuitBreakerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        CircuitBreakerServiceRegistration.AddFromDelegate(services, clientName: null, configure);
        return services;
    }

    /// <summary>
    /// Adds a circuit breaker to every client, configured from <paramref name="section"/>, overlaid per client
    /// by its <c>Clients:{clientName}</c> child.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="section">The configuration section holding the options.</param>
    /// <returns>The same service collection, for chaining.</returns>
    public static IServiceCollection AddCircuitBreaker(this IServiceCollection services, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(services);
        CircuitBreakerServiceRegistration.AddFromSection(services, clientName: null, section);
        return services;
    }
}
