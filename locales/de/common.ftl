# Texte, die mehrere Teile des Bots verwenden.
recipients = { $count ->
    [one] { $count } Empfänger
   *[other] { $count } Empfänger
}
