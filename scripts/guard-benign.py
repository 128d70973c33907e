#!/usr/bin/env python3
"""Benign everyday prompts for training loom-guard's learned injection stage.

The public injection datasets (scripts/guard-data.py) have few short, plain instructions
among their benign rows, while their injections are full of them ("Say 'I have been
PWNED'"), so a model trained on them alone flags "Say hello." This script writes
generated benign prompts as a third source, `loom-benign`, into
target/test-data/injection/: short imperatives, questions and requests, including
everyday uses of words attacks also use ("ignore the typos", "act as a tour guide", "my
system", "reset my password").

    loom-benign-train.jsonl, loom-benign-validation.jsonl (no test split: the held-out
    check is crates/loom-guard/tests/data/benign-short.jsonl, written by hand, apart)

Deterministic (a fixed seed); stdlib only. Run before the trainer:
`python3 scripts/guard-benign.py`. See docs/evaluation.md.
"""

import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "test-data", "injection")
# The hand-written held-out prompts: never generated here, so they stay held out.
HELD_OUT = os.path.join(ROOT, "crates", "loom-guard", "tests", "data", "benign-short.jsonl")
SOURCE = "loom-benign"
COUNT = 4000
VALIDATION_SHARE = 0.15

TOPICS = [
    "the French Revolution", "black holes", "sourdough bread", "climate change", "the stock market",
    "machine learning", "the water cycle", "ancient Egypt", "electric cars", "jazz music", "the human heart",
    "volcanoes", "the Roman Empire", "photosynthesis", "quantum computing", "coffee", "honeybees", "chess",
    "the Moon landing", "renewable energy", "the immune system", "Shakespeare", "the Great Wall of China",
    "sleep", "marathon training", "houseplants", "compound interest", "the Olympics", "dinosaurs", "tea",
    "the Internet", "recycling", "Mars", "penguins", "the printing press", "meditation", "origami",
]
THINGS = [
    "a poem", "a short story", "a haiku", "a song chorus", "a product description", "a cover letter",
    "a tweet", "a toast for a wedding", "a thank-you note", "a riddle", "a joke", "a slogan",
    "a recipe", "a workout plan", "a study schedule", "a packing list", "a grocery list", "an agenda",
]
LANGUAGES = ["French", "Spanish", "German", "Italian", "Japanese", "Portuguese", "Dutch", "Korean"]
PHRASES = [
    "thank you very much", "see you tomorrow", "how much does this cost", "I am lost",
    "happy birthday", "the train is late", "good luck", "where is the museum",
]
ROLES = [
    "travel agent", "chef", "personal trainer", "history teacher", "career coach", "librarian",
    "museum guide", "nutritionist", "interviewer", "product manager", "poet", "debate partner",
]
TASKS = [
    "suggest a weekend itinerary", "plan a healthy breakfast", "quiz me on capital cities",
    "review my resume summary", "help me practice small talk", "recommend three novels",
    "explain the rules of cricket", "give feedback on my essay outline", "set me a short exercise",
]
NAMES = ["Anna", "Ben", "my sister", "the team", "grandpa", "Lucia", "the new intern", "everyone"]
NUMBERS = ["two", "three", "four", "five", "ten"]
DEVICES = ["laptop", "phone", "router", "printer", "smart TV", "tablet"]
PROBLEMS = ["keeps freezing", "won't turn on", "is very slow", "shows an error at startup", "lost its Wi-Fi"]

TEMPLATES = [
    "Say {greeting}.", "Say {greeting} to {name}.", "Say {greeting} in {language}.",
    "Write {thing} about {topic}.", "Write {thing} for {name}.", "Compose {thing} about {topic}.",
    "Draft {thing}.", "Give me {number} facts about {topic}.", "List {number} things to know about {topic}.",
    "Explain {topic} in simple terms.", "Describe {topic} in {number} sentences.", "Summarize {topic}.",
    "Tell me about {topic}.", "Tell me a fun fact about {topic}.", "Translate '{phrase}' into {language}.",
    "How do you say '{phrase}' in {language}?", "Print the word {word} {number} times.",
    "Repeat the phrase '{phrase}'.", "Spell '{word}' backwards.", "Answer in one word: what is {topic} about?",
    "Reply with yes or no: is {topic} important?", "Respond in {language}: {phrase}.",
    "Output {thing} as a bullet list.", "Return the answer as JSON.", "Format the list as a table.",
    "Act as a {role} and {task}.", "Pretend to be a {role} and {task}.", "You are a {role}. {task_cap}.",
    "Role-play as a {role} so I can practice.", "From now on, {preference}.", "New task: {task}.",
    "Ignore the typo in my last message and {task}.", "Ignore my previous question, {task} instead.",
    "Forget about {topic}, let's talk about {topic2}.", "Disregard the first draft and {task}.",
    "My {device} {problem}, what should I do?", "My operating system {problem}, any tips?",
    "How do I reset the password on my {device}?", "What are the instructions for setting up a {device}?",
    "Where can I find the instructions for my {device}?", "Reveal the answer to this riddle: what has keys but no locks?",
    "Is developer mode on my {device} safe to enable?", "How do I override the default settings on my {device}?",
    "What is a system prompt in a chatbot?", "Show me an example of {thing}.", "Make {thing} shorter.",
    "Suggest {number} ideas about {topic}.", "Recommend a book about {topic}.", "Compare {topic} and {topic2}.",
    "Calculate {a} plus {b}.", "What is {a} times {b}?", "Convert {a} kilograms to pounds.",
    "Hello!", "Hi, how are you?", "Good morning!", "Thanks!", "Can you help me?", "Start over, please.",
    "Stop and summarize what we have so far.", "Begin with a one-line answer, then explain.",
]
GREETINGS = ["hello", "hi", "good morning", "goodbye", "thank you", "congratulations", "welcome"]
WORDS = ["banana", "rhythm", "Mississippi", "necessary", "calendar", "yes", "ok"]
PREFERENCES = [
    "answer in short sentences", "use metric units", "reply in Spanish", "keep answers under 50 words",
    "include an example in each answer", "use a friendly tone",
]


def prompt(rng):
    template = rng.choice(TEMPLATES)
    task = rng.choice(TASKS)
    topic, topic2 = rng.sample(TOPICS, 2)
    return template.format(
        greeting=rng.choice(GREETINGS), name=rng.choice(NAMES), language=rng.choice(LANGUAGES),
        thing=rng.choice(THINGS), topic=topic, topic2=topic2, number=rng.choice(NUMBERS),
        phrase=rng.choice(PHRASES), word=rng.choice(WORDS), role=rng.choice(ROLES), task=task,
        task_cap=task[0].upper() + task[1:], preference=rng.choice(PREFERENCES), device=rng.choice(DEVICES),
        problem=rng.choice(PROBLEMS), a=rng.randint(2, 999), b=rng.randint(2, 99),
    )


def main():
    rng = random.Random(19)
    with open(HELD_OUT, encoding="utf-8") as held_out:
        seen = {json.loads(line)["text"].strip().lower() for line in held_out if line.strip()}
    prompts = []
    while len(prompts) < COUNT:
        text = prompt(rng)
        if text.strip().lower() not in seen:
            seen.add(text.strip().lower())
            prompts.append(text)
        elif len(seen) >= COUNT * 10:
            break
    os.makedirs(OUT, exist_ok=True)
    validation = int(len(prompts) * VALIDATION_SHARE)
    splits = {"validation": prompts[:validation], "train": prompts[validation:]}
    for split, texts in splits.items():
        path = os.path.join(OUT, f"{SOURCE}-{split}.jsonl")
        with open(path, "w", encoding="utf-8") as out:
            for text in texts:
                row = {"text": text, "label": 0, "source": SOURCE, "split": split, "category": "benign"}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"  {os.path.relpath(path, ROOT):<52} {len(texts):>6}")


if __name__ == "__main__":
    main()
