using System.Reflection;

namespace CircuitBreaker.Http.Tests.Circuit;

public sealed class RollingWindowTests
{
    private const long Frequency = TimeSpan.TicksPerSecond;

    [Fact]
    public void Read_MoreCallsInTheWindowThanAnIntHolds_CountsThemAll()
    {
        // The longest SamplingDuration, a day, holds more than int.MaxValue calls from about 25,000 a second to one host.
        // Recording them one by one takes a test minutes, so each bucket is given the calls of its tenth of the day.
        var window = new RollingWindow(TimeSpan.FromDays(1), Frequency);
        var bucket = TimeSpan.FromDays(1).Ticks / 10;
        for (var i = 0; i < 10; i++)
        {
            window.Record(i * bucket, failed: true);
        }

        Fill(window, successes: 200_000_000, failures: 50_000_000);

        var (total, failures) = window.Read(9 * bucket);

        Assert.Equal(2_500_000_000L, total);
        Assert.Equal(500_000_000L, failures);
    }

    /// <summary>Sets the counts of every bucket in use, as that many calls recorded in it would.</summary>
    private static void Fill(RollingWindow window, int successes, int failures)
    {
        static int[] Counts(RollingWindow window, string name) =>
            (int[])typeof(RollingWindow).GetField(name, BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(window)!;

        Array.Fill(Counts(window, "_successes"), successes);
        Array.Fill(Counts(window, "_failures"), failures);
    }
}
