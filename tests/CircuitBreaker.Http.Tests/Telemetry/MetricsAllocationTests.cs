using System.Diagnostics.Metrics;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// What listening to the breaker's instruments adds to the bytes each request allocates. Alone in the process: another
/// test's OpenTelemetry provider listens to every meter of the breaker's name, and would record on this test's thread.
/// </summary>
[Collection(ProcessWideTelemetryGroup.Name)]
public sealed class MetricsAllocationTests
{
    [Fact]
    public void ObservedCall_RecordedToAListener_AllocatesNothingMoreThanAClosedCall()
    {
        // circuit.rejected of an observed call carries circuit.enforced=false: the tag's value must not be boxed anew
        // for every call an open circuit in observe-only mode lets through.
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == CircuitBreakerTelemetry.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        var rejected = 0;
        listener.SetMeasurementEventCallback<long>((instrument, _, _, _) =>
        {
            if (instrument.Name == "circuit.rejected")
            {
                rejected++;
            }
        });
        listener.Start();

        var closed = RequestAllocations.PerRequest(c => c.AddCircuitBreaker(o => o.Enforce = false));
        rejected = 0;
        var observed = RequestAllocations.PerRequest(
            c => c.AddCircuitBreaker(o =>
            {
                o.Enforce = false;
                o.BreakDuration = TimeSpan.FromHours(1);
            }),
            setup: (http, stub) => RequestAllocations.Open(http, stub));

        Assert.True(rejected >= 4_000, $"every call should be recorded as observed, {rejected} were");
        Assert.InRange(observed - closed, -8, 8);
    }
}
