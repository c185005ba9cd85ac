namespace CircuitBreaker.Demo.Drill;

/// <summary>The traffic and pacing of the drill: the <c>Drill</c> section of appsettings.json (the timeline is <c>Drill:Scenario</c>).</summary>
public sealed class DrillSettings
{
    /// <summary>Gets or sets the concurrent callers per service.</summary>
    public int CallersPerService { get; set; } = 4;

    /// <summary>Gets or sets the requests each caller sends per second.</summary>
    public double RequestsPerSecond { get; set; } = 3;

    /// <summary>Gets or sets how many ids (1 to this) the callers ask for most of the time, so that the cache has entries for them.</summary>
    public int HotIds { get; set; } = 8;

    /// <summary>Gets or sets the share of requests, 0 to 1, for an id seen rarely or never before, which the cache cannot answer.</summary>
    public double LongTailShare { get; set; } = 0.2;

    /// <summary>Gets or sets how often the plain output prints a status line.</summary>
    public TimeSpan StatusInterval { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Gets or sets how long the drill goes on after the timeline, with traffic, for circuits whose downstream ended
    /// healthy to close again (when the last break is longer than the last phase).
    /// </summary>
    public TimeSpan SettleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Throws when a value is out of range; the message names the key.</summary>
    public void Validate()
    {
        Require(CallersPerService is >= 1 and <= 100, "Drill:CallersPerService must be 1 to 100.");
        Require(RequestsPerSecond is > 0 and <= 100, "Drill:RequestsPerSecond must be above 0 and at most 100.");
        Require(HotIds >= 1, "Drill:HotIds must be at least 1.");
        Require(LongTailShare is >= 0 and <= 1, "Drill:LongTailShare must be between 0 and 1.");
        Require(StatusInterval > TimeSpan.Zero, "Drill:StatusInterval must be positive.");
        Require(SettleTimeout >= TimeSpan.Zero, "Drill:SettleTimeout must not be negative.");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new InvalidOperationException(message);
        }
    }
}
