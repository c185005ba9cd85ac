using CircuitBreaker.Http;

namespace OpenTelemetry.Trace;

/// <summary>Adds the circuit breaker's spans to an OpenTelemetry tracer provider.</summary>
public static class CircuitBreakerTracerProviderBuilderExtensions
{
    /// <summary>
    /// Collects the <see cref="CircuitBreakerTelemetry.ActivitySourceName"/> source: a short span for each call
    /// an open circuit turned away (with the fallback that answered it) and one around each half-open probe.
    /// </summary>
    /// <param name="builder">The tracer provider builder.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static TracerProviderBuilder AddCircuitBreakerInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(CircuitBreakerTelemetry.ActivitySourceName);
    }
}
