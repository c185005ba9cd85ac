using System.Diagnostics;
using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Telemetry;

/// <summary>
/// Runs alone, after every parallel test: any other test's <see cref="ActivityListener"/> would make the
/// breaker's source listened to.
/// </summary>
[Collection(ProcessWideTelemetryGroup.Name)]
public sealed class TracingWithoutListenerTests
{
    [Fact]
    public async Task NobodyListening_TheBreakerCreatesNoSpan_ForARejectionOrAProbe()
    {
        using (var sameName = new ActivitySource(CircuitBreakerTelemetry.ActivitySourceName))
        {
            Assert.False(sameName.HasListeners(), "another test left an ActivityListener on the breaker's source");
        }

        var inFallback = new List<Activity?>();
        var downstream = new List<Activity?>();
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.Fallback.OnOpen = _ =>
            {
                inFallback.Add(Activity.Current);
                return ValueTask.FromResult<HttpResponseMessage?>(new HttpResponseMessage(HttpStatusCode.Accepted));
            };
        });
        var status = HttpStatusCode.InternalServerError;
        harness.Mock.When("*").Respond(() =>
        {
            downstream.Add(Activity.Current);
            return Task.FromResult(new HttpResponseMessage(status));
        });
        using var client = harness.CreateClient();
        var uri = new Uri("http://trace-unlistened.test/");

        (await client.GetAsync(uri)).Dispose();                           // opens
        (await client.GetAsync(uri)).Dispose();                           // rejected, answered by the custom fallback
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;
        (await client.GetAsync(uri)).Dispose();                           // the probe

        Assert.Equal(CircuitState.Closed, harness.Circuit("http://trace-unlistened.test:80").State);
        Assert.Equal([null], inFallback);
        Assert.Equal([null, null], downstream);

        // The same calls with a listener: the fallback and the probe do run inside the breaker's spans.
        using var spans = ActivityCollector.ForHost("trace-unlistened.test");
        status = HttpStatusCode.InternalServerError;
        (await client.GetAsync(uri)).Dispose();
        (await client.GetAsync(uri)).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(30));
        status = HttpStatusCode.OK;
        (await client.GetAsync(uri)).Dispose();

        Assert.Equal("circuit_breaker.rejected", inFallback[^1]?.OperationName);
        Assert.Equal("circuit_breaker.probe", downstream[^1]?.OperationName);
        Assert.Equal(["circuit_breaker.rejected", "circuit_breaker.probe"], spans.Stopped.Select(a => a.OperationName));
    }
}
