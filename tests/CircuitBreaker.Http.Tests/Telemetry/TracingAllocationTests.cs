using System.Diagnostics;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// What a span of the breaker allocates. Alone in its group: another test's listener would run, and allocate, on
/// this test's thread as its spans start and stop.
/// </summary>
[Collection(ProcessWideTelemetryGroup.Name)]
public sealed class TracingAllocationTests
{
    private static readonly ActivitySource Reference = new("CircuitBreaker.Http.Tests.Reference");

    [Fact]
    public void RejectionSpan_AllocatesNoMoreThanASpanWithTheSameTags()
    {
        static void Configure(IHttpClientBuilder client) => client.AddCircuitBreaker(o =>
        {
            o.BreakDuration = TimeSpan.FromHours(1);
            o.Fallback.Degraded.StatusCode = 503;
        });

        var untraced = RequestAllocations.PerRequest(Configure, setup: (http, stub) => RequestAllocations.Open(http, stub));
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is CircuitBreakerTelemetry.ActivitySourceName or "CircuitBreaker.Http.Tests.Reference",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        var traced = RequestAllocations.PerRequest(Configure, setup: (http, stub) => RequestAllocations.Open(http, stub));

        // The same span, with the six tags the rejection's span ends with, each set as the span runs.
        object port = 80;
        for (var i = 0; i < 100; i++)
        {
            StartAndStop();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            StartAndStop();
        }

        var reference = (GC.GetAllocatedBytesForCurrentThread() - before) / 1_000.0;

        // Before, the circuit's tags were handed to the span as a boxed TagList, with a boxed enumerator: about 300 bytes more.
        Assert.InRange(traced - untraced, 0, reference + 128);

        void StartAndStop()
        {
            using var span = Reference.StartActivity("circuit_breaker.rejected", ActivityKind.Internal, default(ActivityContext));
            span!.SetTag("http.client.name", "client");
            span.SetTag("server.address", "users.test");
            span.SetTag("server.port", port);
            span.SetTag("circuit.state", "open");
            span.SetTag("circuit.rejected.reason", "circuit_open");
            span.SetTag("circuit.fallback", "degraded");
        }
    }
}
