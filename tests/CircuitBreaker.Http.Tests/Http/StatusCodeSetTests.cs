namespace CircuitBreaker.Http.Tests.Http;

public sealed class StatusCodeSetTests
{
    [Theory]
    [InlineData("5xx", 500, true)]
    [InlineData("5xx", 599, true)]
    [InlineData("5xx", 499, false)]
    [InlineData("5xx,408,429", 408, true)]
    [InlineData("5xx,408,429", 429, true)]
    [InlineData("5xx,408,429", 404, false)]
    [InlineData("500-504", 504, true)]
    [InlineData("500-504", 505, false)]
    [InlineData(" 503 ; 4XX ", 418, true)]
    [InlineData("503", 0, false)]
    [InlineData("503", 1000, false)]
    public void Contains_MatchesCodesRangesAndClasses(string text, int code, bool expected) =>
        Assert.Equal(expected, StatusCodeSet.Parse(text).Contains(code));

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("6xx")]
    [InlineData("99")]
    [InlineData("600")]
    [InlineData("504-500")]
    [InlineData("abc")]
    [InlineData("5x")]
    public void TryParse_InvalidText_FailsWithReason(string text)
    {
        Assert.False(StatusCodeSet.TryParse(text, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}
