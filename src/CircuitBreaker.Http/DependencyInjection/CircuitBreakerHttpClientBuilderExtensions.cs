using CircuitBreaker.Http;
using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the circuit breaker to one named <see cref="HttpClient"/>.</summary>
public static class CircuitBreakerHttpClientBuilderExtensions
{
    /// <summary>
    /// Adds a circuit breaker, one circuit per downstream authority, configured from the app's configuration
    /// section <c>CircuitBreaker</c>, overlaid by <c>CircuitBreaker:Clients:{clientName}</c>.
    /// </summary>
    /// <param name="builder">The client builder.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHttpClientBuilder AddCircuitBreaker(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        CircuitBreakerServiceRegistration.AddFromAppConfiguration(builder.Services, builder.Name);
        return builder;
    }

    /// <summary>Adds a circuit breaker, one circuit per downstream authority, configured in code.</summary>
    /// <param name="builder">The client builder.</param>
    /// <param name="configure">Sets the options of this client's circuits.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHttpClientBuilder AddCircuitBreaker(this IHttpClientBuilder builder, Action<CircuitBreakerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        CircuitBreakerServiceRegistration.AddFromDelegate(builder.Services, builder.Name, configure);
        return builder;
    }

    /// <summary>
    /// Adds a circuit breaker, one circuit per downstream authority, configured from <paramref name="section"/>,
    /// overlaid by its <c>Clients:{clientName}</c> child; reloads of the section apply to existing circuits.
    /// </summary>
    /// <param name="builder">The client builder.</param>
    /// <param name="section">The configuration section holding the options.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static IHttpClientBuilder AddCircuitBreaker(this IHttpClientBuilder builder, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(builder);
        CircuitBreakerServiceRegistration.AddFromSection(builder.Services, builder.Name, section);
        return builder;
    }
}
