using System.Net;
using System.Runtime.CompilerServices;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.Retry;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Http;

/// <summary>
/// A standard resilience handler added for every client (as .NET Aspire's service defaults do) sits above the breaker.
/// Its retry, left as it is, retries the breaker's own answers: <see cref="CircuitOpenException"/> is an
/// <see cref="HttpRequestException"/>, and a degraded answer is a 503 with <c>Retry-After</c>. README's predicate keeps
/// them from it.
/// </summary>
public sealed class ResilienceHandlerAboveTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(10);
    private static readonly CircuitKey UsersKey = new(BreakerHarness.ClientName, "http://users.test:80");

    [Fact]
    public async Task WithReadmesRetryPredicate_CircuitOpenException_IsNotRetried()
    {
        var retries = new StrongBox<int>();
        using var harness = Harness(configure: null, retries);
        var calls = harness.Mock.When("*").Respond(HttpStatusCode.OK);
        harness.Registry.Isolate(UsersKey);
        using var client = harness.CreateClient();

        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri("http://users.test/")).WaitAsync(Guard));

        Assert.Equal(0, retries.Value);
        Assert.Equal(0, harness.Mock.GetMatchCount(calls));
    }

    [Fact]
    public async Task WithReadmesRetryPredicate_ADegradedAnswer_IsNotRetried()
    {
        var retries = new StrongBox<int>();
        using var harness = Harness(o => o.Fallback.Degraded.StatusCode = 503, retries);
        harness.Mock.When("*").Respond(HttpStatusCode.OK);
        harness.Registry.Isolate(UsersKey);
        using var client = harness.CreateClient();

        using var response = await client.GetAsync(new Uri("http://users.test/")).WaitAsync(Guard);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(["degraded"], response.Headers.GetValues("X-Circuit-Fallback"));
        Assert.Equal(0, retries.Value);
    }

    [Fact]
    public async Task ReadmesRetryPredicate_StillRetriesTheHostsOwnTransientFailures_ButNotTheBreakersAnswers()
    {
        var options = new HttpStandardResilienceOptions();
        Configure(options);
        var context = ResilienceContextPool.Shared.Get();
        using var fromHost = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        using var degraded = new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        degraded.Headers.Add("X-Circuit-Fallback", "degraded");

        Assert.True(await ShouldRetry(Outcome.FromResult(fromHost)));
        Assert.True(await ShouldRetry(Outcome.FromException<HttpResponseMessage>(new HttpRequestException("connection refused"))));
        Assert.False(await ShouldRetry(Outcome.FromResult(degraded)));
        Assert.False(await ShouldRetry(Outcome.FromException<HttpResponseMessage>(new CircuitOpenException(UsersKey, CircuitState.Open, retryAfter: null))));
        ResilienceContextPool.Shared.Return(context);

        ValueTask<bool> ShouldRetry(Outcome<HttpResponseMessage> outcome) =>
            options.Retry.ShouldHandle(new RetryPredicateArguments<HttpResponseMessage>(context, outcome, attemptNumber: 0));
    }

    private static BreakerHarness Harness(Action<CircuitBreakerOptions>? configure, StrongBox<int> retries) =>
        new(configure, services => services.ConfigureHttpClientDefaults(b => b.AddStandardResilienceHandler(o =>
        {
            Configure(o);

            // Retries counted, not waited for: a delay would run on the fake clock, which these tests do not advance, and
            // a call left waiting there would also hold up the disposal of Polly's pipelines.
            o.Retry.Delay = TimeSpan.Zero;
            o.Retry.ShouldRetryAfterHeader = false;
            o.Retry.OnRetry = _ =>
            {
                Interlocked.Increment(ref retries.Value);
                return default;
            };
        })));

    // As README's "With Microsoft.Extensions.Http.Resilience" gives it.
    private static void Configure(HttpStandardResilienceOptions o) =>
        o.Retry.ShouldHandle = args => ValueTask.FromResult(
            args.Outcome.Exception is not (CircuitOpenException or LoadSheddingException)
            && args.Outcome.Result?.Headers.Contains("X-Circuit-Fallback") != true
            && HttpClientResiliencePredicates.IsTransient(args.Outcome));
}
