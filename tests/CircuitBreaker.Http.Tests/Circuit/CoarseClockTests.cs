using Microsoft.Extensions.Time.Testing;

namespace CircuitBreaker.Http.Tests.Circuit;

public sealed class CoarseClockTests
{
    [Fact]
    public void Now_FakeTimeProvider_AdvancesExactlyWithIt()
    {
        var time = new FakeTimeProvider();
        var clock = CoarseClock.For(time);
        var start = clock.Now;

        time.Advance(TimeSpan.FromMilliseconds(1234.5));

        Assert.Equal(TimeSpan.FromMilliseconds(1234.5), clock.ToTimeSpan(clock.Now - start));
    }

    [Fact]
    public void ToUnits_SystemClock_CountsMillisecondsRoundedUp()
    {
        var clock = CoarseClock.For(TimeProvider.System);

        Assert.Equal(2, clock.ToUnits(TimeSpan.FromMilliseconds(1.5)));
        Assert.Equal(10_000, clock.ToUnits(TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromMilliseconds(3), clock.ToTimeSpan(3));
    }

    [Fact]
    public void Now_SystemClock_IsTheRuntimeTimersClock()
    {
        var clock = CoarseClock.For(TimeProvider.System);

        var before = Environment.TickCount64;
        var now = clock.Now;

        Assert.InRange(now, before, Environment.TickCount64);
    }
}
