using Microsoft.Extensions.Logging;

namespace CircuitBreaker.Http;

/// <summary>
/// Where a metrics or tracing listener that threw is reported. A listener or exporter is the breaker's own machinery
/// as far as the caller is concerned: its fault must fail neither the call it was told about nor the circuit's move.
/// Each signal's first fault is logged; a broken listener throws on every event, which would otherwise log thousands
/// of times a second on an open circuit.
/// </summary>
internal sealed class TelemetryFaults(ILogger logger)
{
    private int _metricsReported;
    private int _tracingReported;

    public void Metrics(Exception exception) => Report(ref _metricsReported, "metrics", exception);

    public void Tracing(Exception exception) => Report(ref _tracingReported, "tracing", exception);

    private void Report(ref int reported, string signal, Exception exception)
    {
        if (Interlocked.Exchange(ref reported, 1) == 0)
        {
            Log.TelemetryFailed(logger, exception, signal); // the logger is guarded: it does not throw
        }
    }
}
