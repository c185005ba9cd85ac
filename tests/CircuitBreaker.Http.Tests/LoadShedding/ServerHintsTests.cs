using System.Net;
using System.Net.Http.Headers;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.LoadShedding;

public sealed class ServerHintsTests
{
    private static readonly Uri Users = new("http://users.test/");

    [Fact]
    public async Task RetryAfterDelta_On503ThatOpens_OpensForThatLong()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        harness.Mock.When("*").Respond(() => Task.FromResult(WithRetryAfter(HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(120))));
        using var client = harness.CreateClient();

        (await client.GetAsync(Users)).Dispose();
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        Assert.Equal(TimeSpan.FromSeconds(120), ex.RetryAfter);
        harness.Time.Advance(TimeSpan.FromSeconds(119));
        Assert.Equal(CircuitState.Open, harness.Circuit("http://users.test:80").State);
        harness.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(CircuitState.HalfOpen, harness.Circuit("http://users.test:80").State);
    }

    [Fact]
    public async Task RetryAfterDate_On429CountedAsFailure_OpensUntilThatDate()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.FailureStatusCodes = "5xx,429";
        });
        var until = harness.Time.GetUtcNow().AddSeconds(45);
        harness.Mock.When("*").Respond(() =>
        {
            var response = new HttpResponseMessage(HttpStatusCode.TooManyRequests);
            response.Headers.RetryAfter = new RetryConditionHeaderValue(until);
            return Task.FromResult(response);
        });
        using var client = harness.CreateClient();

        (await client.GetAsync(Users)).Dispose();
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        Assert.Equal(TimeSpan.FromSeconds(45), ex.RetryAfter);
    }

    [Fact]
    public async Task RetryAfter_IsBoundedByMaxBreakDuration()
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.MaxBreakDuration = TimeSpan.FromMinutes(2);
        });
        harness.Mock.When("*").Respond(() => Task.FromResult(WithRetryAfter(HttpStatusCode.ServiceUnavailable, TimeSpan.FromHours(1))));
        using var client = harness.CreateClient();

        (await client.GetAsync(Users)).Dispose();
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        Assert.Equal(TimeSpan.FromMinutes(2), ex.RetryAfter);
    }

    [Fact]
    public async Task RetryAfter_LongerThanABreakDurationAboveMaxBreakDuration_IsNotCutBelowTheBreakDuration()
    {
        // A BreakDuration above MaxBreakDuration is used as is; a server asking for even longer must not get less.
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.BreakDuration = TimeSpan.FromMinutes(10);
            o.MaxBreakDuration = TimeSpan.FromMinutes(5);
        });
        harness.Mock.When("*").Respond(() => Task.FromResult(WithRetryAfter(HttpStatusCode.ServiceUnavailable, TimeSpan.FromHours(1))));
        using var client = harness.CreateClient();

        (await client.GetAsync(Users)).Dispose();
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        Assert.Equal(TimeSpan.FromMinutes(10), ex.RetryAfter);
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError, true)] // only 503 and 429 carry a server's hint
    [InlineData(HttpStatusCode.ServiceUnavailable, false)] // HonorRetryAfter off
    public async Task RetryAfter_NotHonoured_UsesBreakDuration(HttpStatusCode status, bool honor)
    {
        using var harness = new BreakerHarness(o =>
        {
            o.FailureThreshold = 1;
            o.HonorRetryAfter = honor;
        });
        harness.Mock.When("*").Respond(() => Task.FromResult(WithRetryAfter(status, TimeSpan.FromSeconds(120))));
        using var client = harness.CreateClient();

        (await client.GetAsync(Users)).Dispose();
        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));

        Assert.Equal(TimeSpan.FromSeconds(30), ex.RetryAfter);
    }

    [Fact]
    public async Task RetryAfter_OnFailedProbe_SetsTheNextBreak()
    {
        using var harness = new BreakerHarness(o => o.FailureThreshold = 1);
        var hint = (TimeSpan?)null;
        harness.Mock.When("*").Respond(() => Task.FromResult(hint is { } h
            ? WithRetryAfter(HttpStatusCode.ServiceUnavailable, h)
            : new HttpResponseMessage(HttpStatusCode.ServiceUnavailable)));
        using var client = harness.CreateClient();
        (await client.GetAsync(Users)).Dispose();
        harness.Time.Advance(TimeSpan.FromSeconds(30));

        hint = TimeSpan.FromSeconds(75);
        (await client.GetAsync(Users)).Dispose(); // the probe fails, asking for 75 s

        var ex = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(Users));
        Assert.Equal(TimeSpan.FromSeconds(75), ex.RetryAfter);
    }

    [Fact]
    public void BreakDurationJitter_SpreadsBreaksWithinBounds()
    {
        var time = new FakeTimeProvider();
        var settings = BreakerSettings.From(new CircuitBreakerOptions
        {
            FailureThreshold = 1,
            BreakDuration = TimeSpan.FromSeconds(30),
            BreakDurationJitter = 0.1,
        });
        var breaks = new List<TimeSpan>();
        for (var i = 0; i < 500; i++)
        {
            using var machine = new CircuitStateMachine(settings, time, t => breaks.Add(t.BreakDuration!.Value));
            machine.OnFailure(machine.TryAcquire());
        }

        Assert.All(breaks, b => Assert.InRange(b, TimeSpan.FromSeconds(27), TimeSpan.FromSeconds(33)));
        Assert.True(breaks.Distinct().Count() > 100, "the breaks should be spread, not equal");
        Assert.InRange(breaks.Average(b => b.TotalSeconds), 29.5, 30.5);
    }

    [Fact]
    public void BreakDurationJitter_DoesNotCompoundTheGrowth()
    {
        // Many circuits: a compounding jitter keeps one circuit's five breaks within the bounds below about a third of
        // the time, so one circuit alone would let it pass now and then; two hundred never all do.
        for (var circuit = 0; circuit < 200; circuit++)
        {
            var time = new FakeTimeProvider();
            var breaks = new List<TimeSpan>();
            using var machine = new CircuitStateMachine(
                BreakerSettings.From(new CircuitBreakerOptions
                {
                    FailureThreshold = 1,
                    BreakDuration = TimeSpan.FromSeconds(10),
                    BreakDurationMultiplier = 2,
                    MaxBreakDuration = TimeSpan.FromMinutes(10),
                    BreakDurationJitter = 0.2,
                }),
                time,
                t =>
                {
                    if (t.BreakDuration is { } b)
                    {
                        breaks.Add(b);
                    }
                });

            machine.OnFailure(machine.TryAcquire());
            for (var i = 0; i < 4; i++)
            {
                time.Advance(breaks[^1]);
                machine.OnFailure(machine.TryAcquire());
            }

            // Each break is 10 s x 2^n, spread by at most 20 % of that, whatever the jitter of the previous one.
            Assert.Equal(5, breaks.Count);
            for (var n = 0; n < breaks.Count; n++)
            {
                var nominal = 10 * Math.Pow(2, n);
                Assert.InRange(breaks[n].TotalSeconds, nominal * 0.8, nominal * 1.2);
            }
        }
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    public void Validate_BreakDurationJitterOutOfRange_FailsNamingTheKey(double jitter)
    {
        var result = new CircuitBreakerOptionsValidator().Validate("users", new CircuitBreakerOptions { BreakDurationJitter = jitter });

        Assert.Contains("BreakDurationJitter", result.FailureMessage, StringComparison.Ordinal);
    }

    private static HttpResponseMessage WithRetryAfter(HttpStatusCode status, TimeSpan delay)
    {
        var response = new HttpResponseMessage(status);
        response.Headers.RetryAfter = new RetryConditionHeaderValue(delay);
        return response;
    }
}
