using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Http;

/// <summary>
/// What a feature adds to the bytes each request allocates, against the breaker with its default options, which adds
/// nothing to the bare client's (docs/benchmarks.md). The bounds leave room for what a feature needs by nature (the
/// bulkhead's lease) and none for the machinery around it.
/// </summary>
public sealed class RequestAllocationTests
{
    private static double Default => RequestAllocations.PerRequest(c => c.AddCircuitBreaker());

    [Fact]
    public void ThrottleAndSlowStart_AllocateNothingForACallTheyLetThrough()
    {
        var baseline = Default;

        var throttled = RequestAllocations.PerRequest(c => c.AddCircuitBreaker(o =>
        {
            o.Throttle.PermitsPerSecond = 1_000_000;
            o.Throttle.Burst = 1_000_000;
        }));
        var rampingUp = RequestAllocations.PerRequest(c => c.AddCircuitBreaker(o => o.RampUpDuration = TimeSpan.FromMinutes(1)));

        Assert.InRange(throttled - baseline, -8, 8);
        Assert.InRange(rampingUp - baseline, -8, 8);
    }

    [Fact]
    public void Bulkhead_AllocatesOnlyItsLease_ForACallThatFindsASlot()
    {
        var baseline = Default;

        var limited = RequestAllocations.PerRequest(c => c.AddCircuitBreaker(o => o.MaxConcurrentRequests = 100));
        var queueing = RequestAllocations.PerRequest(c => c.AddCircuitBreaker(o =>
        {
            o.MaxConcurrentRequests = 100;
            o.MaxQueuedRequests = 10;
        }));
        var limitedSync = RequestAllocations.PerRequest(c => c.AddCircuitBreaker(o => o.MaxConcurrentRequests = 100), sync: true);

        // The ConcurrencyLimiter's lease, 40 bytes; nothing of the handler's own.
        Assert.InRange(limited - baseline, 0, 48);
        Assert.InRange(queueing - baseline, 0, 48);
        Assert.InRange(limitedSync - RequestAllocations.PerRequest(c => c.AddCircuitBreaker(), sync: true), 0, 48);
    }
}
