"""One everyday sentence in many languages, for measuring how fairly a tokenizer treats them.

The meaning is the same in every line ("The weather is nice today, so let's go for a walk in the
park."), so differences in token counts come from the tokenizer, not from what is said. Petrov et
al. (2023) measured such gaps across many languages with professionally translated parallel text;
these lines are a small, hand-made stand-in with the same shape.
"""
from __future__ import annotations

WALK_IN_THE_PARK: dict[str, str] = {
    "English": "The weather is nice today, so let's go for a walk in the park.",
    "French": "Il fait beau aujourd'hui, alors allons nous promener dans le parc.",
    "German": "Das Wetter ist heute schön, also lass uns im Park spazieren gehen.",
    "Spanish": "Hoy hace buen tiempo, así que vamos a dar un paseo por el parque.",
    "Vietnamese": "Hôm nay trời đẹp, vậy chúng ta hãy đi dạo trong công viên nhé.",
    "Swahili": "Hali ya hewa ni nzuri leo, kwa hivyo twende tukatembee katika bustani.",
    "Russian": "Сегодня хорошая погода, так что давай прогуляемся в парке.",
    "Greek": "Ο καιρός είναι ωραίος σήμερα, οπότε ας πάμε μια βόλτα στο πάρκο.",
    "Arabic": "الطقس جميل اليوم، فلنذهب في نزهة في الحديقة.",
    "Hebrew": "מזג האוויר נעים היום, אז בואו נצא לטייל בפארק.",
    "Hindi": "आज मौसम अच्छा है, तो चलो पार्क में टहलने चलते हैं।",
    "Chinese": "今天天气很好，我们去公园散步吧。",
    "Japanese": "今日は天気がいいので、公園を散歩しましょう。",
    "Korean": "오늘 날씨가 좋으니 공원에 산책하러 가자.",
}
