using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>Fake logging down to Debug, and the records the circuit breaker wrote (the HTTP client factory logs too).</summary>
internal static class BreakerLogs
{
    public const string Category = "CircuitBreaker.Http.CircuitBreakerRegistry";

    public static void WithFakeLogging(IServiceCollection services) =>
        services.AddLogging(b => b.AddFakeLogging().SetMinimumLevel(LogLevel.Trace));

    /// <summary>Every record of a <c>CircuitBreaker.Http</c> category, in the order written.</summary>
    public static IReadOnlyList<FakeLogRecord> Of(IServiceProvider services) =>
        services.GetFakeLogCollector().GetSnapshot()
            .Where(r => r.Category?.StartsWith("CircuitBreaker.Http.", StringComparison.Ordinal) == true)
            .ToList();
}
