using System.Diagnostics;

namespace CircuitBreaker.Http;

/// <summary>
/// Short spans of the <see cref="CircuitBreakerTelemetry.ActivitySourceName"/> source, only where the breaker
/// changed what happened to a request: <c>circuit_breaker.rejected</c> for a call an open circuit turned away
/// (with the fallback that answered it), and <c>circuit_breaker.probe</c> around a half-open probe, whose HTTP
/// span is its child. Ordinary calls through a closed circuit get no span. Nothing is created without a listener.
/// </summary>
internal static class CircuitBreakerTracing
{
    public static Activity? StartRejection(CircuitEntry circuit, in Rejection rejection)
    {
        var activity = Start("circuit_breaker.rejected", circuit, rejection.State);
        activity?.SetTag("circuit.rejected.reason", rejection.Reason);
        return activity;
    }

    public static Activity? StartProbe(CircuitEntry circuit) => Start("circuit_breaker.probe", circuit, CircuitState.HalfOpen);

    public static void ProbeSucceeded(Activity? probe) => probe?.SetTag("circuit.probe.result", "success");

    public static void ProbeFailed(Activity? probe, string errorType)
    {
        if (probe is not null)
        {
            probe.SetTag("circuit.probe.result", "failure");
            probe.SetTag("error.type", errorType);
            probe.SetStatus(ActivityStatusCode.Error, errorType);
        }
    }

    private static Activity? Start(string name, CircuitEntry circuit, CircuitState state)
    {
        var source = CircuitBreakerTelemetry.ActivitySource;
        if (!source.HasListeners())
        {
            return null;
        }

        var activity = source.StartActivity(name, ActivityKind.Internal, default(ActivityContext), circuit.Tags());
        activity?.SetTag("circuit.state", CircuitBreakerTelemetry.Name(state));
        return activity;
    }
}
