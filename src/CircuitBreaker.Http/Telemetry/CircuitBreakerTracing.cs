using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace CircuitBreaker.Http;

/// <summary>
/// Short spans of the <see cref="CircuitBreakerTelemetry.ActivitySourceName"/> source, only where the breaker
/// changed what happened to a request: <c>circuit_breaker.rejected</c> for a call an open circuit turned away
/// (with the fallback that answered it), and <c>circuit_breaker.probe</c> around a half-open probe, whose HTTP
/// span is its child. Ordinary calls through a closed circuit get no span. Nothing is created without a listener.
/// A listener that throws as a span starts or stops costs the call its span, never the call itself.
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

    /// <summary>Ends a span of this class, if one was started.</summary>
    // Inlined, as the `using` it replaced was: it runs in finally blocks of the rejection's path, where the JIT does
    // not inline by itself, and without a listener it is one null check.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Stop(Activity? span, CircuitEntry circuit)
    {
        if (span is not null)
        {
            StopListened(span, circuit);
        }
    }

#pragma warning disable CA1031 // A listener's fault must never fail the call it traces.
    private static Activity? Start(string name, CircuitEntry circuit, CircuitState state) =>
        CircuitBreakerTelemetry.ActivitySource.HasListeners() ? StartListened(name, circuit, state) : null;

    // Apart from Start, so that the check for a listener, all a call pays without one, stays small enough to inline.
    private static Activity? StartListened(string name, CircuitEntry circuit, CircuitState state)
    {
        var source = CircuitBreakerTelemetry.ActivitySource;
        var current = Activity.Current;
        try
        {
            var activity = source.StartActivity(name, ActivityKind.Internal, default(ActivityContext), circuit.SpanTags());
            activity?.SetTag("circuit.state", CircuitBreakerTelemetry.Name(state));
            return activity;
        }
        catch (Exception ex)
        {
            // The span started (and became current) before the listener that threw was told: put the caller's back,
            // or the rest of the call would run under a span that never ends.
            Activity.Current = current;
            circuit.Registry.TelemetryFaults.Tracing(ex);
            return null;
        }
    }

    private static void StopListened(Activity span, CircuitEntry circuit)
    {
        try
        {
            span.Dispose();
        }
        catch (Exception ex)
        {
            // Stopping tells the listeners before it restores the span's parent as current.
            if (Activity.Current == span)
            {
                Activity.Current = span.Parent;
            }

            circuit.Registry.TelemetryFaults.Tracing(ex);
        }
    }
#pragma warning restore CA1031
}
