using CircuitBreaker.Http;

namespace OpenTelemetry.Metrics;

/// <summary>Adds the circuit breaker's instruments to an OpenTelemetry meter provider.</summary>
public static class CircuitBreakerMeterProviderBuilderExtensions
{
    /// <summary>
    /// Collects the <see cref="CircuitBreakerTelemetry.MeterName"/> meter: transition, failure and rejection
    /// counters and the state and open-duration gauges of every circuit.
    /// </summary>
    /// <param name="builder">The meter provider builder.</param>
    /// <returns>The same builder, for chaining.</returns>
    public static MeterProviderBuilder AddCircuitBreakerInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(CircuitBreakerTelemetry.MeterName);
    }
}
