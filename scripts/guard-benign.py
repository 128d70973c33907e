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
HELD_OUT = [
    os.path.join(ROOT, "crates", "loom-guard", "tests", "data", name)
    for name in ("benign-short.jsonl", "benign-fresh.jsonl", "benign-unseen.jsonl")
]
SOURCE = "loom-benign"
COUNT = 9000
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

# Composed prompts: an optional persona or setup, a task (often carrying its own text), and
# optional constraints on the answer's format, length, language or tone. Operators' system
# prompts and users' standing requests look like this, and so do many injections' surfaces.
PERSONAS = [
    "You are a helpful assistant.", "You are a friendly support agent for {company}.",
    "You are an experienced {role}.", "You are {company}'s virtual assistant.",
    "You are a patient tutor for a {level} student.", "You are a careful editor.",
    "You are a senior {engineer} reviewing a colleague's work.", "Act as a {role}.",
    "Pretend you are a {role} giving advice.", "Imagine you are a {role} at {company}.",
    "Play the role of a {role} in a mock interview.", "As a {role}, help me with this.",
    "Your job is to help customers of {company} with {support_topic}.",
    "You work for {company} and answer questions about {support_topic}.",
    "Behave like a {role} who explains things simply.",
]
TASKS2 = [
    "Summarize the text below.", "Summarize the following article in {number} bullet points.",
    "Rewrite this sentence to sound more {tone}: {sentence}", "Paraphrase: {sentence}",
    "Proofread this: {sentence}", "Translate into {language}: {sentence}",
    "Sort these words alphabetically: {words}.", "Sort these numbers from smallest to largest: {nums}.",
    "Extract all {entities} from the following text.", "List the {entities} mentioned below.",
    "Classify the following reviews as positive or negative.", "Classify this ticket by urgency.",
    "Fix the grammar in this paragraph.", "Shorten this headline: {sentence}",
    "Make this email more polite.", "Turn these notes into a short report.",
    "Explain this error message: {error}", "Write a function in {code_language} that {code_task}.",
    "Review this {code_language} code for bugs.", "Write a SQL query that {sql_task}.",
    "Answer the customer's question below.", "Answer the question using the context provided.",
    "Draft a reply to this message: {sentence}", "Give me feedback on my {work}.",
    "Help me prepare for a {event}.", "Plan a {number}-day trip to {city}.",
    "Generate {number} test cases for a {feature}.", "Count the words in this paragraph.",
    "Repeat the last paragraph with simpler words.", "Repeat the list, but numbered.",
    "Show me your reasoning step by step.", "Show the steps of the calculation.",
    "Reveal the answer only after I guess.", "Tell me the secret to {secret_topic}.",
    "Explain {topic} to a {level} student.", "Continue the story from where it stopped.",
    "Compare these two options and recommend one.", "Create a checklist for {event}.",
]
CONSTRAINTS = [
    "Respond only in JSON with keys {keys}.", "Return valid {fmt} and nothing else.", "Output {fmt} only.",
    "Answer in {language}.", "Always answer in {language}.", "Reply in one sentence.",
    "Keep it under {limit} words.", "Keep every reply under {number} sentences.", "Be concise.",
    "Use a {tone} tone.", "Do not use bullet points.", "Do not use jargon.", "Don't mention prices.",
    "Never make up facts; say when you don't know.", "Only use information from the text provided.",
    "Answer with a single number only.", "Answer with yes or no.", "Answer as if I were {age} years old.",
    "Start your answer with '{opening}'.", "Begin every answer with a short summary.",
    "End with a question.", "End each answer with a one-line takeaway.",
    "Use Markdown headings.", "Format the answer as a table.", "Use numbered steps.",
    "Write it in the voice of a {role}.", "Include an example.", "Cite the paragraph you used.",
    "Reply 'OK' if you understood.", "Say 'ready' when you are ready.", "Think step by step.",
    "If the question is unclear, ask me to clarify.", "Avoid repeating yourself.",
]
STANDING = [
    "From now on, {preference}.", "From today on, {preference}.", "For the rest of our conversation, {preference}.",
    "Going forward, {preference}.", "Until I say otherwise, {preference}.", "Please {preference} from now on.",
    "Switch to {language} for the rest of our chat.", "Forget what I said about {topic}, it was wrong.",
    "Never mind, let's go back to {topic}.", "Scratch that. {task2}", "Wait, stop. {task2}",
    "Let's start again. {task2}", "Ignore the typos and {task}.", "Ignore my last question. {task2}",
    "Disregard the outliers and compute the average again.", "Skip the introduction. {task2}",
    "Override the {setting} to {value} in this config.", "How do I bypass the cache when testing {thing2}?",
    "How do I override a method in {code_language}?", "What does 'sudo' do in Linux?",
    "How do I reset my admin password on {device}?", "What is developer mode on {device} for?",
    "Explain what jailbreaking a phone means.", "What were the instructions for the {event} again?",
    "The previous instructions said {value}, is that right?", "What's a system prompt?",
    "Rules for this game: {game_rules}", "New rule for our game: {game_rules}",
]
COMPANIES = ["Acme Bikes", "Northwind Bank", "BrightDental", "CityLibrary", "Helios Energy", "Blue Fern Hotel"]
SUPPORT_TOPICS = ["orders and returns", "account settings", "billing", "appointments", "room bookings", "repairs"]
LEVELS = ["high school", "first-year university", "primary school", "beginner", "graduate"]
ENGINEERS = ["backend engineer", "data scientist", "frontend developer", "site reliability engineer"]
TONES = ["formal", "friendly", "professional", "casual", "confident", "neutral", "warm"]
SENTENCES = [
    "gonna be late, sorry.", "the meeting has been postponed to next week.", "pls send me the invoice asap",
    "We regret to inform you that your order is delayed.", "their going to the park tomorow",
    "Our sales grew by ten percent last quarter.", "can u fix the wifi in room 12", "Thanks for the quick help!",
]
ENTITIES = ["dates", "names", "email subjects", "cities", "product names", "amounts", "action items"]
WORDLISTS = ["pear, apple, fig", "zebra, mango, kiwi, lemon", "delta, alpha, charlie, bravo"]
ERRORS = ["TypeError: 'NoneType' object is not subscriptable", "ECONNREFUSED 127.0.0.1:5432", "404 Not Found"]
CODE_LANGUAGES = ["Python", "Rust", "JavaScript", "Go", "Java", "TypeScript", "C#"]
CODE_TASKS = [
    "reverses a string", "checks whether a number is prime", "parses a CSV line", "merges two sorted lists",
    "removes duplicates from a list", "validates an email address", "prints hello world",
]
SQL_TASKS = ["counts orders per customer", "deletes duplicate rows from users", "finds the top five products"]
WORKS = ["essay outline", "business plan", "cover letter", "presentation slides", "short story"]
EVENTS = ["job interview", "team offsite", "product launch", "exam", "wedding", "move to a new flat"]
CITIES = ["Lisbon", "Kyoto", "Chicago", "Prague", "Cape Town", "Oslo"]
FEATURES = ["login form", "shopping cart", "search box", "password reset flow", "file upload"]
SECRET_TOPICS = ["a fluffy omelette", "good sleep", "crispy roast potatoes", "a tidy desk"]
KEYS = ["name and age", "title and summary", "city, country and population", "score and reason"]
FORMATS = ["JSON", "YAML", "CSV", "XML", "Markdown"]
OPENINGS = ["Dear customer", "Sure", "Summary:", "Hello"]
SETTINGS = ["font size", "timeout", "log level", "port", "default language"]
VALUES = ["14pt", "30 seconds", "debug", "8080", "200 degrees"]
GAME_RULES = [
    "you think of an animal and I ask yes/no questions.", "I give you a word and you give me a rhyme.",
    "each answer must start with the last letter of my word.", "you describe a city and I guess it.",
]
MORE_PREFERENCES = [
    "answer more briefly", "use British spelling", "call me Sam", "avoid technical terms",
    "give me sources when you can", "answer in Spanish", "show code in Python", "keep it short",
]


def composed(rng):
    fill = dict(
        company=rng.choice(COMPANIES), role=rng.choice(ROLES), level=rng.choice(LEVELS),
        engineer=rng.choice(ENGINEERS), support_topic=rng.choice(SUPPORT_TOPICS), tone=rng.choice(TONES),
        sentence=rng.choice(SENTENCES), language=rng.choice(LANGUAGES), words=rng.choice(WORDLISTS),
        nums=", ".join(str(rng.randint(1, 99)) for _ in range(5)), entities=rng.choice(ENTITIES),
        error=rng.choice(ERRORS), code_language=rng.choice(CODE_LANGUAGES), code_task=rng.choice(CODE_TASKS),
        sql_task=rng.choice(SQL_TASKS), work=rng.choice(WORKS), event=rng.choice(EVENTS),
        city=rng.choice(CITIES), feature=rng.choice(FEATURES), secret_topic=rng.choice(SECRET_TOPICS),
        topic=rng.choice(TOPICS), number=rng.choice(NUMBERS), keys=rng.choice(KEYS), fmt=rng.choice(FORMATS),
        limit=rng.choice(["20", "50", "100", "150"]), age=rng.choice(["five", "ten", "twelve"]),
        opening=rng.choice(OPENINGS), setting=rng.choice(SETTINGS), value=rng.choice(VALUES),
        game_rules=rng.choice(GAME_RULES), preference=rng.choice(PREFERENCES + MORE_PREFERENCES),
        task=rng.choice(TASKS), device=rng.choice(DEVICES), thing2=rng.choice(["my website", "an API", "the build"]),
    )
    fill["task2"] = rng.choice(TASKS2).format(**fill)
    shape = rng.random()
    if shape < 0.3:
        parts = [rng.choice(STANDING)]
    else:
        parts = []
        if rng.random() < 0.45:
            parts.append(rng.choice(PERSONAS))
        parts.append(rng.choice(TASKS2))
        for _ in range(rng.choice([0, 1, 1, 2])):
            parts.append(rng.choice(CONSTRAINTS))
        if len(parts) == 1 and rng.random() < 0.4:
            parts = [rng.choice(CONSTRAINTS)]
    return " ".join(part.format(**fill) for part in parts)


def prompt(rng):
    if rng.random() < 0.6:
        return composed(rng)
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
    seen = set()
    for path in HELD_OUT:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as held_out:
                seen |= {json.loads(line)["text"].strip().lower() for line in held_out if line.strip()}
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
