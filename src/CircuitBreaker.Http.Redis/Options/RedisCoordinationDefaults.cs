namespace CircuitBreaker.Http.Redis;

/// <summary>The defaults of <see cref="RedisCoordinationOptions"/>, in one place.</summary>
internal static class RedisCoordinationDefaults
{
    /// <summary>The configuration section read by <c>AddRedisCoordination()</c> without arguments.</summary>
    public const string SectionName = "CircuitBreaker:Fleet";

    public const string KeyPrefix = "circuitbreaker";

    public const string Quorum = "2";

    public static readonly TimeSpan QuorumWindow = TimeSpan.FromMinutes(1);

    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(5);

    public static readonly TimeSpan InstanceExpiry = TimeSpan.FromSeconds(15);

    public static readonly TimeSpan ProbeWait = TimeSpan.FromSeconds(30);
}
