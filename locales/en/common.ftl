# Texts shared by several parts of the bot.
recipients = { $count ->
    [one] { $count } recipient
   *[other] { $count } recipients
}
