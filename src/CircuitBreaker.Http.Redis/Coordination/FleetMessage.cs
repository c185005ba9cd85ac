using System.Text.Json.Serialization;

namespace CircuitBreaker.Http.Redis;

/// <summary>What one instance tells the others on the fleet's channel.</summary>
/// <param name="Type"><see cref="OpenType"/> or <see cref="CloseType"/>.</param>
/// <param name="Client">The client name of the circuit.</param>
/// <param name="Authority">The downstream authority of the circuit.</param>
/// <param name="BreakMilliseconds">For an open, how long the fleet's break lasts from now.</param>
/// <param name="Instance">The sender, so that it can ignore its own messages.</param>
internal sealed record FleetMessage(
    [property: JsonPropertyName("t")] string Type,
    [property: JsonPropertyName("c")] string Client,
    [property: JsonPropertyName("a")] string Authority,
    [property: JsonPropertyName("b")] long BreakMilliseconds,
    [property: JsonPropertyName("i")] string Instance)
{
    /// <summary>A quorum opened the circuit, or the fleet's probe failed: every instance opens it and waits for one probe.</summary>
    public const string OpenType = "open";

    /// <summary>The fleet's probe succeeded: every instance holding the circuit closes it.</summary>
    public const string CloseType = "close";
}

[JsonSerializable(typeof(FleetMessage))]
internal sealed partial class FleetJsonContext : JsonSerializerContext;
